package data

import (
	"fmt"

	"github.com/flowood/flowood/data/pixels"
)

// The transforms below return new image sets with copies of the pixels and
// labels; the input is not modified. They keep Name, Split, Source and
// Lossy, and CenterCrop and the resizes record themselves in Resampling. The
// per-image work is package pixels', which scoring shares (detector).

// CenterCrop returns the central h x w window of every image. When the
// margin to remove is odd, the extra row or column is taken from the bottom
// or right: the window starts at row (H-h)/2 and column (W-w)/2.
func CenterCrop(im *Images, h, w int) (*Images, error) {
	if h <= 0 || w <= 0 || h > im.H || w > im.W {
		return nil, fmt.Errorf("centre crop to %dx%d: images are %dx%d", h, w, im.H, im.W)
	}
	out, err := im.mapImages(h, w, im.C, func(src []uint8) ([]uint8, error) {
		return pixels.CenterCrop(src, im.H, im.W, im.C, h, w)
	})
	if err != nil {
		return nil, err
	}
	out.Resampling.CropWidth, out.Resampling.CropHeight = w, h
	return out, nil
}

// Resize returns the images scaled to h x w by pixels.AutoMethod's
// method: area averaging when neither dimension grows, bilinear
// otherwise, rounded to the nearest integer (ResizeWith).
func Resize(im *Images, h, w int) (*Images, error) {
	return ResizeWith(im, h, w, pixels.AutoMethod(im.H, im.W, h, w))
}

// Grayscale returns single-channel images. RGB images are converted with
// the ITU-R 601 luma weights, L = (299 R + 587 G + 114 B) / 1000, rounded
// to the nearest integer; images with other channel counts keep their first
// channel. Single-channel images are copied unchanged.
func Grayscale(im *Images) *Images {
	out := im.withShape(im.N)
	out.C = 1
	out.Labels = cloneLabels(im.Labels)
	out.Pix = pixels.Grayscale(im.Pix, im.N*im.H*im.W, im.C)
	return out
}

// RGB returns three-channel images: single-channel images have their value
// repeated in each channel, and images with other channel counts keep
// their first three channels (repeating the last when there are fewer).
// Three-channel images are copied unchanged.
func RGB(im *Images) *Images {
	out := im.withShape(im.N)
	out.C = 3
	out.Labels = cloneLabels(im.Labels)
	out.Pix = pixels.RGB(im.Pix, im.N*im.H*im.W, im.C)
	return out
}

// mapImages returns the images of shape h x w x c that fn makes of each
// of im's.
func (im *Images) mapImages(h, w, c int, fn func(src []uint8) ([]uint8, error)) (*Images, error) {
	out := im.withShape(im.N)
	if out.Resampling.StoredWidth == 0 {
		out.Resampling.StoredWidth, out.Resampling.StoredHeight = im.W, im.H
	}
	out.H, out.W, out.C = h, w, c
	out.Resampling.Width, out.Resampling.Height = w, h
	out.Pix = make([]uint8, im.N*h*w*c)
	out.Labels = cloneLabels(im.Labels)
	for i := range im.N {
		px, err := fn(im.Image(i))
		if err != nil {
			return nil, err
		}
		copy(out.Pix[i*h*w*c:], px)
	}
	return out, nil
}

// cloneLabels returns a copy of labels, or nil.
func cloneLabels(labels []uint8) []uint8 {
	if labels == nil {
		return nil
	}
	return append([]uint8(nil), labels...)
}
