package data

import "fmt"

// Images is a set of N images of H x W pixels with C channels each, stored as
// unsigned bytes in NHWC order, with an optional class label per image.
type Images struct {
	// Name is the data set's registry name, such as "fashionmnist"; empty for
	// images that did not come from the registry.
	Name string
	// Split is "train" or "test" for registry data sets.
	Split string
	// Source says where the images were read from: a file path, or
	// "embedded:" followed by the embedded file's name.
	Source string
	// Lossy, when not nil, says the pixels went through lossy compression
	// before flowood read them (the mirror's JPEG CIFAR-10).
	Lossy *Lossy
	// Resampling records the images' size provenance: as published, and
	// any crop and resize flowood applied (Load fills it for registry
	// data sets; CenterCrop and ResizeWith update it).
	Resampling Resampling

	N, H, W, C int

	// Pix holds N*H*W*C pixel values; image i starts at i*H*W*C, and within
	// an image the channel index varies fastest.
	Pix []uint8
	// Labels holds one class label per image, or is nil when there are none.
	Labels []uint8
}

// Dim returns the number of values in one image, H*W*C.
func (im *Images) Dim() int { return im.H * im.W * im.C }

// Validate reports whether the dimensions are non-negative and agree with the
// lengths of Pix and Labels.
func (im *Images) Validate() error {
	if im.N < 0 || im.H < 0 || im.W < 0 || im.C < 0 {
		return fmt.Errorf("invalid image set shape %dx%dx%dx%d", im.N, im.H, im.W, im.C)
	}
	if len(im.Pix) != im.N*im.Dim() {
		return fmt.Errorf("image set shape %dx%dx%dx%d needs %d pixel values, have %d",
			im.N, im.H, im.W, im.C, im.N*im.Dim(), len(im.Pix))
	}
	if im.Labels != nil && len(im.Labels) != im.N {
		return fmt.Errorf("image set has %d images but %d labels", im.N, len(im.Labels))
	}
	return nil
}

// Image returns the pixels of image i, H*W*C values in HWC order. The slice
// shares storage with im.Pix. Image panics if i is out of range.
func (im *Images) Image(i int) []uint8 {
	if i < 0 || i >= im.N {
		panic(fmt.Sprintf("data: image index %d out of range [0,%d)", i, im.N))
	}
	d := im.Dim()
	return im.Pix[i*d : (i+1)*d : (i+1)*d]
}

// Subset returns a new image set holding copies of the images (and labels)
// at the given indices, in that order; indices may repeat. Subset panics if
// an index is out of range.
func (im *Images) Subset(idx []int) *Images {
	d := im.Dim()
	out := im.withShape(len(idx))
	out.Pix = make([]uint8, len(idx)*d)
	if im.Labels != nil {
		out.Labels = make([]uint8, len(idx))
	}
	for j, i := range idx {
		copy(out.Pix[j*d:], im.Image(i))
		if im.Labels != nil {
			out.Labels[j] = im.Labels[i]
		}
	}
	return out
}

// Head returns the first n images, or all of them when n exceeds N; a
// negative n counts as zero. The result shares storage with im; its slices
// are capped so that appending to them cannot overwrite im's data.
func (im *Images) Head(n int) *Images {
	n = max(0, min(n, im.N))
	out := im.withShape(n)
	end := n * im.Dim()
	out.Pix = im.Pix[:end:end]
	if im.Labels != nil {
		out.Labels = im.Labels[:n:n]
	}
	return out
}

// Float32 writes the images at the given indices to dst as float32 pixel
// values in [0, 255], in NHWC order: image idx[j] fills
// dst[j*Dim() : (j+1)*Dim()]. If idx is nil, all N images are written in
// order. Float32 panics if dst is shorter than len(idx)*Dim() or if an index
// is out of range.
func (im *Images) Float32(dst []float32, idx []int) {
	d := im.Dim()
	if idx == nil {
		if len(dst) < len(im.Pix) {
			panic(fmt.Sprintf("data: Float32 destination has %d values, need %d", len(dst), len(im.Pix)))
		}
		for i, v := range im.Pix {
			dst[i] = float32(v)
		}
		return
	}
	if len(dst) < len(idx)*d {
		panic(fmt.Sprintf("data: Float32 destination has %d values, need %d", len(dst), len(idx)*d))
	}
	for j, i := range idx {
		out := dst[j*d : (j+1)*d]
		for k, v := range im.Image(i) {
			out[k] = float32(v)
		}
	}
}

// withShape returns an image set with im's metadata and image shape, holding
// n images and no data yet.
func (im *Images) withShape(n int) *Images {
	return &Images{Name: im.Name, Split: im.Split, Source: im.Source, Lossy: im.Lossy, Resampling: im.Resampling, N: n, H: im.H, W: im.W, C: im.C}
}
