package data

import "fmt"

// The transforms below return new image sets with copies of the pixels and
// labels; the input is not modified. They keep Name, Split and Source.

// CenterCrop returns the central h x w window of every image. When the
// margin to remove is odd, the extra row or column is taken from the bottom
// or right: the window starts at row (H-h)/2 and column (W-w)/2.
func CenterCrop(im *Images, h, w int) (*Images, error) {
	if h <= 0 || w <= 0 || h > im.H || w > im.W {
		return nil, fmt.Errorf("centre crop to %dx%d: images are %dx%d", h, w, im.H, im.W)
	}
	out := im.withShape(im.N)
	out.H, out.W = h, w
	out.Pix = make([]uint8, im.N*h*w*im.C)
	out.Labels = cloneLabels(im.Labels)
	top, left := (im.H-h)/2, (im.W-w)/2
	row := w * im.C
	for i := range im.N {
		src := im.Image(i)
		dst := out.Pix[i*h*row:]
		for y := range h {
			s := ((top+y)*im.W + left) * im.C
			copy(dst[y*row:(y+1)*row], src[s:s+row])
		}
	}
	return out, nil
}

// Resize returns the images scaled to h x w. When neither dimension grows,
// each output pixel is the average of the source area it covers, with
// fractional weights at its edges (area averaging, as OpenCV's INTER_AREA);
// otherwise pixels are interpolated bilinearly between the source pixel
// centres (half-pixel alignment, edges clamped). Values are rounded to the
// nearest integer.
func Resize(im *Images, h, w int) (*Images, error) {
	if h <= 0 || w <= 0 || im.H <= 0 || im.W <= 0 {
		return nil, fmt.Errorf("resize to %dx%d: images are %dx%d", h, w, im.H, im.W)
	}
	var ys, xs []tap
	if h <= im.H && w <= im.W {
		ys, xs = areaTaps(im.H, h), areaTaps(im.W, w)
	} else {
		ys, xs = bilinearTaps(im.H, h), bilinearTaps(im.W, w)
	}
	out := im.withShape(im.N)
	out.H, out.W = h, w
	out.Pix = make([]uint8, im.N*h*w*im.C)
	out.Labels = cloneLabels(im.Labels)
	c := im.C
	// Filter rows first into a float buffer of H x w x C, then columns.
	tmp := make([]float64, im.H*w*c)
	for i := range im.N {
		src := im.Image(i)
		for y := range im.H {
			for x, t := range xs {
				for k := range c {
					var v float64
					for j, wt := range t.w {
						v += wt * float64(src[(y*im.W+t.start+j)*c+k])
					}
					tmp[(y*w+x)*c+k] = v
				}
			}
		}
		dst := out.Pix[i*h*w*c:]
		for y, t := range ys {
			for x := range w {
				for k := range c {
					var v float64
					for j, wt := range t.w {
						v += wt * tmp[((t.start+j)*w+x)*c+k]
					}
					dst[(y*w+x)*c+k] = roundByte(v)
				}
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
// covered length over the interval length. m <= n.
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

// Grayscale returns single-channel images. RGB images are converted with
// the ITU-R 601 luma weights, L = (299 R + 587 G + 114 B) / 1000, rounded
// to the nearest integer; images with other channel counts keep their first
// channel. Single-channel images are copied unchanged.
func Grayscale(im *Images) *Images {
	out := im.withShape(im.N)
	out.C = 1
	out.Labels = cloneLabels(im.Labels)
	px := im.N * im.H * im.W
	out.Pix = make([]uint8, px)
	for p := range px {
		s := im.Pix[p*im.C:]
		if im.C == 3 {
			out.Pix[p] = uint8((299*uint32(s[0]) + 587*uint32(s[1]) + 114*uint32(s[2]) + 500) / 1000)
		} else if im.C > 0 {
			out.Pix[p] = s[0]
		}
	}
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
	px := im.N * im.H * im.W
	out.Pix = make([]uint8, px*3)
	if im.C == 0 {
		return out
	}
	for p := range px {
		s := im.Pix[p*im.C : (p+1)*im.C]
		for k := range 3 {
			out.Pix[p*3+k] = s[min(k, im.C-1)]
		}
	}
	return out
}

// cloneLabels returns a copy of labels, or nil.
func cloneLabels(labels []uint8) []uint8 {
	if labels == nil {
		return nil
	}
	return append([]uint8(nil), labels...)
}
