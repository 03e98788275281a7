package data

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flowood/flowood/data/pixels"
)

// Resampling is the size provenance of a data set's images
// (Images.Resampling): how the published files got their size, and what
// flowood did to it after reading them. A flow learns local pixel
// statistics (the paper's Sec. 4), and resizing changes them: an image
// downsampled by area averaging is smoother than one taken by nearest
// neighbour, so when the in-distribution and OOD sets were resized
// differently, part of their likelihood gap is the resizing's (see
// SameResampling).
type Resampling struct {
	// Origin says how the images in the files got their size, before
	// flowood read them ("as published ..."); empty when unknown.
	Origin string `json:"origin,omitempty"`
	// StoredWidth and StoredHeight are the size of the images in the
	// files; zero when unknown.
	StoredWidth  int `json:"stored_width,omitempty"`
	StoredHeight int `json:"stored_height,omitempty"`
	// CropWidth and CropHeight are the centre crop flowood took of the
	// stored images (CenterCrop), zero when none.
	CropWidth  int `json:"crop_width,omitempty"`
	CropHeight int `json:"crop_height,omitempty"`
	// Method is the resize method flowood applied (pixels.Area,
	// pixels.Bilinear or pixels.Nearest), empty when it did not resize.
	Method string `json:"method,omitempty"`
	// Width and Height are the size flowood gives the images.
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Native reports whether flowood kept the stored size: no crop and no
// resize.
func (r Resampling) Native() bool { return r.Method == "" && r.CropWidth == 0 }

// String describes the provenance in one line, such as "89x109 (halved
// ...), centre crop 74x74, resized to 32x32 by area".
func (r Resampling) String() string {
	s := fmt.Sprintf("%dx%d", r.StoredWidth, r.StoredHeight)
	if r.StoredWidth == 0 {
		s = "size as stored unknown"
	}
	if r.Origin != "" {
		s += " (" + r.Origin + ")"
	}
	if r.CropWidth > 0 {
		s += fmt.Sprintf(", centre crop %dx%d", r.CropWidth, r.CropHeight)
	}
	if r.Method != "" {
		s += fmt.Sprintf(", resized to %dx%d by %s", r.Width, r.Height, r.Method)
	}
	if r.Native() {
		s += ", native: not resized"
	}
	return s
}

// SameResampling reports whether two sets' pixels went through the same
// resizing by flowood: both native, or the same crop-relative scale
// factor and method. It compares what flowood did, not the origins
// (which differ between any two data sets).
func SameResampling(a, b Resampling) bool {
	if a.Native() || b.Native() {
		return a.Native() == b.Native()
	}
	from := func(r Resampling) (int, int) {
		if r.CropWidth > 0 {
			return r.CropWidth, r.CropHeight
		}
		return r.StoredWidth, r.StoredHeight
	}
	aw, ah := from(a)
	bw, bh := from(b)
	return a.Method == b.Method && aw*b.Width == bw*a.Width && ah*b.Height == bh*a.Height
}

// origins says how each registered data set's published images got their
// size; celeba's mirror form sets its own (loadCelebA).
var origins = map[string]string{
	"mnist":        "as published: digits size-normalised into 20x20 and centred in 28x28 by its authors",
	"fashionmnist": "as published: product photos downsampled to 28x28 by its authors",
	"notmnist":     "as published: glyphs rendered at 28x28 by its author",
	"cifar10":      "as published: downsampled to 32x32 by its collectors, from the 80 Million Tiny Images",
	"svhn":         "as published: cropped digits resized to 32x32 by its authors",
	"celeba":       "as published: aligned faces at 178x218",
	"tinyimagenet": "as published: downsampled to 64x64 by Stanford CS231n",
	"imagenet64":   "as published: ImageNet downsampled to 64x64 by van den Oord et al. (box resize) or, for the npz batches, by Chrabaszcz et al.",
}

// celebAMirrorOrigin is the provenance of the mirror's CelebA.
const celebAMirrorOrigin = "halved from 178x218 and stored as JPEG quality 75 by the mirror's source, resize method unknown"

// withOrigin fills im's stored size (when a loader did not) and origin
// (when unknown) from the registry.
func (im *Images) withOrigin(name string) {
	r := &im.Resampling
	if r.StoredWidth == 0 {
		r.StoredWidth, r.StoredHeight = im.W, im.H
	}
	if r.Origin == "" {
		r.Origin = origins[name]
	}
	r.Width, r.Height = im.W, im.H
}

// ResizeWith returns the images scaled to h x w by method (pixels.Area,
// pixels.Bilinear or pixels.Nearest; pixels.ResizeWith), recording it in
// Resampling. Resizing to the images' own size returns a copy and
// records nothing.
func ResizeWith(im *Images, h, w int, method string) (*Images, error) {
	if h <= 0 || w <= 0 || im.H <= 0 || im.W <= 0 {
		return nil, fmt.Errorf("resize to %dx%d: images are %dx%d", h, w, im.H, im.W)
	}
	if !slices.Contains(pixels.Methods, method) {
		return nil, fmt.Errorf("resize method %q (known: %s)", method, strings.Join(pixels.Methods, ", "))
	}
	if h == im.H && w == im.W {
		method = ""
	}
	out, err := im.mapImages(h, w, im.C, func(src []uint8) ([]uint8, error) {
		if method == "" {
			return append([]uint8(nil), src...), nil
		}
		return pixels.ResizeWith(src, im.H, im.W, im.C, h, w, method)
	})
	if err != nil {
		return nil, fmt.Errorf("resizing %s: %w", im.Name, err)
	}
	if method != "" {
		out.Resampling.Method = method
	}
	return out, nil
}
