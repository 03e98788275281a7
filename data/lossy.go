package data

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
)

// Lossy describes the lossy compression a data set's pixels went through
// before flowood read them (Images.Lossy): a flow trained on such images
// learns the compression's local statistics, and other data sets must
// get the same treatment before their likelihoods compare (the mirror's
// CIFAR-10 is JPEG; see JPEGRoundTrip).
type Lossy struct {
	// Format is "jpeg".
	Format string `json:"format"`
	// Quality is the JPEG quality (1-100).
	Quality int `json:"quality"`
	// Width and Height are the size at which the images were compressed.
	Width  int `json:"width"`
	Height int `json:"height"`
}

func (l Lossy) String() string {
	return fmt.Sprintf("%s quality %d at %dx%d", l.Format, l.Quality, l.Width, l.Height)
}

// mirrorCIFAR10 is how the mirror's CIFAR-10 was compressed.
var mirrorCIFAR10 = &Lossy{Format: "jpeg", Quality: 75, Width: cifarSide, Height: cifarSide}

// JPEGRoundTrip returns a copy of im with every image encoded as JPEG at
// the given quality by Go's image/jpeg and decoded again, at im's size
// (grayscale images as 8-bit gray JPEGs, colour ones as YCbCr 4:2:0, as
// the encoder writes them).
func JPEGRoundTrip(im *Images, quality int) (*Images, error) {
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("data: JPEG quality %d out of range [1, 100]", quality)
	}
	if im.C != 1 && im.C != 3 {
		return nil, fmt.Errorf("data: JPEG round trip of %d-channel images", im.C)
	}
	out := *im
	out.Pix = make([]uint8, len(im.Pix))
	out.Lossy = &Lossy{Format: "jpeg", Quality: quality, Width: im.W, Height: im.H}
	d := im.H * im.W * im.C
	var buf bytes.Buffer
	for i := 0; i < im.N; i++ {
		px := im.Pix[i*d : (i+1)*d]
		var src image.Image
		if im.C == 1 {
			src = &image.Gray{Pix: px, Stride: im.W, Rect: image.Rect(0, 0, im.W, im.H)}
		} else {
			rgba := image.NewRGBA(image.Rect(0, 0, im.W, im.H))
			for j := 0; j < im.H*im.W; j++ {
				copy(rgba.Pix[4*j:4*j+3], px[3*j:3*j+3])
				rgba.Pix[4*j+3] = 255
			}
			src = rgba
		}
		buf.Reset()
		if err := jpeg.Encode(&buf, src, &jpeg.Options{Quality: quality}); err != nil {
			return nil, fmt.Errorf("data: JPEG round trip of %s image %d: %w", im.Name, i, err)
		}
		dec, err := jpeg.Decode(&buf)
		if err != nil {
			return nil, fmt.Errorf("data: JPEG round trip of %s image %d: %w", im.Name, i, err)
		}
		dst := out.Pix[i*d : (i+1)*d]
		b := dec.Bounds()
		for y := 0; y < im.H; y++ {
			for x := 0; x < im.W; x++ {
				r, g, bl, _ := dec.At(b.Min.X+x, b.Min.Y+y).RGBA()
				k := (y*im.W + x) * im.C
				if im.C == 1 {
					dst[k] = uint8(r >> 8)
				} else {
					dst[k], dst[k+1], dst[k+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
				}
			}
		}
	}
	return &out, nil
}
