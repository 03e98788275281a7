// Package pixels holds the image conversions that preparing a dataset
// and scoring a new image share, on one image of 8-bit values stored
// row-major as height x width x channels (HWC): centre crop, resize,
// grayscale and RGB, and conversion from an image.Image. It imports
// nothing of flowood, so that scoring code (package detector) applies the
// very preprocessing a model was trained with without pulling in the
// dataset loaders.
package pixels

import (
	"fmt"
	"hash/fnv"
	"image"
	"image/color"
	"math/rand/v2"
)

// CenterCrop returns the central ch x cw window of the h x w x c image
// pix. When the margin to remove is odd, the extra row or column is taken
// from the bottom or right: the window starts at row (h-ch)/2 and column
// (w-cw)/2.
func CenterCrop(pix []uint8, h, w, c, ch, cw int) ([]uint8, error) {
	if ch <= 0 || cw <= 0 || ch > h || cw > w {
		return nil, fmt.Errorf("centre crop to %dx%d: image is %dx%d", ch, cw, h, w)
	}
	out := make([]uint8, ch*cw*c)
	top, left := (h-ch)/2, (w-cw)/2
	row := cw * c
	for y := range ch {
		s := ((top+y)*w + left) * c
		copy(out[y*row:(y+1)*row], pix[s:s+row])
	}
	return out, nil
}

// Resize methods (ResizeWith). Each filters rows and columns separately
// and rounds to the nearest integer.
const (
	// Area averages, for each output pixel, the source area it covers,
	// with fractional weights at its edges (OpenCV's INTER_AREA when
	// shrinking; when enlarging, each output pixel averages the one or two
	// source pixels its interval overlaps).
	Area = "area"
	// Bilinear interpolates between the two source pixel centres nearest
	// to the output pixel's centre (half-pixel alignment, edges clamped),
	// without widening the filter when shrinking (no antialiasing, as
	// OpenCV's INTER_LINEAR and torch's interpolate without antialias).
	Bilinear = "bilinear"
	// Nearest takes the source pixel under the output pixel's centre,
	// floor((o + 1/2) n / m) (PIL's NEAREST).
	Nearest = "nearest"
)

// Methods lists the resize methods ResizeWith knows.
var Methods = []string{Area, Bilinear, Nearest}

// AutoMethod is the method Resize uses from h x w to nh x nw: Area when
// neither dimension grows, Bilinear otherwise.
func AutoMethod(h, w, nh, nw int) string {
	if nh <= h && nw <= w {
		return Area
	}
	return Bilinear
}

// Resize returns the h x w x c image pix scaled to nh x nw by
// AutoMethod's method: area averaging when neither dimension grows,
// bilinear interpolation otherwise (see ResizeWith).
func Resize(pix []uint8, h, w, c, nh, nw int) ([]uint8, error) {
	return ResizeWith(pix, h, w, c, nh, nw, AutoMethod(h, w, nh, nw))
}

// ResizeWith returns the h x w x c image pix scaled to nh x nw by method
// (Area, Bilinear or Nearest; see them). Values are rounded to the
// nearest integer.
func ResizeWith(pix []uint8, h, w, c, nh, nw int, method string) ([]uint8, error) {
	if nh <= 0 || nw <= 0 || h <= 0 || w <= 0 {
		return nil, fmt.Errorf("resize to %dx%d: image is %dx%d", nh, nw, h, w)
	}
	if len(pix) != h*w*c {
		return nil, fmt.Errorf("resize: %d values for a %dx%dx%d image", len(pix), h, w, c)
	}
	var ys, xs []tap
	switch method {
	case Area:
		ys, xs = areaTaps(h, nh), areaTaps(w, nw)
	case Bilinear:
		ys, xs = bilinearTaps(h, nh), bilinearTaps(w, nw)
	case Nearest:
		ys, xs = nearestTaps(h, nh), nearestTaps(w, nw)
	default:
		return nil, fmt.Errorf("resize method %q (known: %v)", method, Methods)
	}
	out := make([]uint8, nh*nw*c)
	// Filter rows first into a float buffer of h x nw x c, then columns.
	tmp := make([]float64, h*nw*c)
	for y := range h {
		for x, t := range xs {
			for k := range c {
				var v float64
				for j, wt := range t.w {
					v += wt * float64(pix[(y*w+t.start+j)*c+k])
				}
				tmp[(y*nw+x)*c+k] = v
			}
		}
	}
	for y, t := range ys {
		for x := range nw {
			for k := range c {
				var v float64
				for j, wt := range t.w {
					v += wt * tmp[((t.start+j)*nw+x)*c+k]
				}
				out[(y*nw+x)*c+k] = roundByte(v)
			}
		}
	}
	return out, nil
}

// tap is the filter of one output position: weights w for the source
// positions start, start+1, ...
type tap struct {
	start int
	w     []float64
}

// areaTaps returns, for each of m output positions, the source positions
// of [0, n) that its interval [o*n/m, (o+1)*n/m) covers, weighted by the
// covered length over the interval length.
func areaTaps(n, m int) []tap {
	taps := make([]tap, m)
	scale := float64(n) / float64(m)
	for o := range m {
		lo, hi := float64(o)*scale, float64(o+1)*scale
		first := int(lo)
		last := min(int(hi-1e-9), n-1)
		t := tap{start: first, w: make([]float64, last-first+1)}
		for s := first; s <= last; s++ {
			cover := min(hi, float64(s+1)) - max(lo, float64(s))
			t.w[s-first] = cover / scale
		}
		taps[o] = t
	}
	return taps
}

// bilinearTaps returns, for each of m output positions, the two source
// positions of [0, n) around its centre, mapped as (o+0.5)*n/m-0.5 and
// clamped to the edges, with linear weights.
func bilinearTaps(n, m int) []tap {
	taps := make([]tap, m)
	scale := float64(n) / float64(m)
	for o := range m {
		p := (float64(o)+0.5)*scale - 0.5
		p = max(0, min(p, float64(n-1)))
		s := int(p)
		f := p - float64(s)
		if s >= n-1 || f == 0 {
			taps[o] = tap{start: s, w: []float64{1}}
			continue
		}
		taps[o] = tap{start: s, w: []float64{1 - f, f}}
	}
	return taps
}

// nearestTaps returns, for each of m output positions, the source
// position under its centre, floor((o + 1/2) n / m), computed in integers.
func nearestTaps(n, m int) []tap {
	taps := make([]tap, m)
	for o := range m {
		taps[o] = tap{start: min((2*o+1)*n/(2*m), n-1), w: []float64{1}}
	}
	return taps
}

// roundByte rounds v to the nearest integer in [0, 255].
func roundByte(v float64) uint8 {
	v += 0.5
	if v <= 0 {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// Grayscale converts px pixels of c channels to one channel: RGB with the
// ITU-R 601 luma weights, L = (299 R + 587 G + 114 B) / 1000, rounded to
// the nearest integer; other channel counts keep their first channel.
func Grayscale(pix []uint8, px, c int) []uint8 {
	out := make([]uint8, px)
	for p := range px {
		s := pix[p*c:]
		if c == 3 {
			out[p] = uint8((299*uint32(s[0]) + 587*uint32(s[1]) + 114*uint32(s[2]) + 500) / 1000)
		} else if c > 0 {
			out[p] = s[0]
		}
	}
	return out
}

// RGB converts px pixels of c channels to three: a single channel is
// repeated, other counts keep their first three channels (repeating the
// last when there are fewer).
func RGB(pix []uint8, px, c int) []uint8 {
	out := make([]uint8, px*3)
	if c == 0 {
		return out
	}
	for p := range px {
		s := pix[p*c : (p+1)*c]
		for k := range 3 {
			out[p*3+k] = s[min(k, c-1)]
		}
	}
	return out
}

// FromImage returns the pixels of img as 8-bit values, with its height
// and width and channel count: one channel for grayscale images (color
// models Gray and Gray16), three (RGB, alpha dropped after
// un-premultiplying) otherwise — what the dataset decoders give for PNG
// and JPEG files.
func FromImage(img image.Image) (pix []uint8, h, w, c int) {
	b := img.Bounds()
	h, w = b.Dy(), b.Dx()
	switch img.ColorModel() {
	case color.GrayModel, color.Gray16Model:
		pix = make([]uint8, h*w)
		for y := range h {
			for x := range w {
				pix[y*w+x] = color.GrayModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.Gray).Y
			}
		}
		return pix, h, w, 1
	}
	pix = make([]uint8, h*w*3)
	for y := range h {
		for x := range w {
			n := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := (y*w + x) * 3
			pix[i], pix[i+1], pix[i+2] = n.R, n.G, n.B
		}
	}
	return pix, h, w, 3
}

// Dequantize sets dst[i] = (pix[i] + e)/256, the dequantised pixel in
// [0, 1) that flows model: e uniform on [0, 1) from rng, or 1/2 (the
// midpoint) when rng is nil.
func Dequantize(dst []float32, pix []uint8, rng *rand.Rand) {
	for i, x := range pix {
		e := 0.5
		if rng != nil {
			e = rng.Float64()
		}
		dst[i] = float32((float64(x) + e) / 256)
	}
}

// ImageNoise returns the generator of the dequantisation noise of the
// image pix (its pixels, any layout): a PCG seeded by the FNV-1a hash of
// the pixels and their count. With it (Dequantize(dst, pix,
// ImageNoise(pix))) the dequantised image, and so its score, is a
// function of the image alone, whatever set, batch or position it comes
// in: package detector and flowood eval dequantise images this way, so
// that eval's scores.csv and thresholds are those the detector computes.
func ImageNoise(pix []uint8) *rand.Rand {
	h := fnv.New64a()
	h.Write(pix)
	return rand.New(rand.NewPCG(h.Sum64(), uint64(len(pix))))
}
