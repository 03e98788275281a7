// Package mask builds the binary masks of coupling layers as data: tensors
// of shape [H, W, C] holding 1 or 0 per pixel and channel.
//
// A coupling has two masks (Pair): Cond, where it conditions on its input
// (x_id: what its st-network sees), and Trans, where it transforms it
// (x_change). They are disjoint; their union need not cover the image
// (the cycle mask leaves two quadrants untouched and unseen). For the
// classic masks Trans is the complement of Cond (Complement), and Reverse
// swaps the two parts; couplings alternate masks and their reverse.
// Sequence gives the pair of each coupling of a named mask sequence.
package mask

import (
	"fmt"

	"github.com/flowood/flowood/tensor"
)

// build returns the [h, w, c] mask with value keep(i, j, k), complemented
// when reverse is set.
func build(h, w, c int, reverse bool, keep func(i, j, k int) bool) *tensor.Tensor {
	if h <= 0 || w <= 0 || c <= 0 {
		panic(fmt.Sprintf("mask: shape %dx%dx%d", h, w, c))
	}
	m := tensor.New(h, w, c)
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			for k := 0; k < c; k++ {
				if keep(i, j, k) != reverse {
					m.Data[(i*w+j)*c+k] = 1
				}
			}
		}
	}
	return m
}

// Checkerboard keeps pixels with (i + j) even, in every channel.
func Checkerboard(h, w, c int, reverse bool) *tensor.Tensor {
	return build(h, w, c, reverse, func(i, j, _ int) bool { return (i+j)%2 == 0 })
}

// Channel keeps the first half of the channels (c must be even).
func Channel(h, w, c int, reverse bool) *tensor.Tensor {
	if c%2 != 0 {
		panic(fmt.Sprintf("mask: channel mask over %d channels", c))
	}
	return build(h, w, c, reverse, func(_, _, k int) bool { return k < c/2 })
}

// Horizontal keeps the top half of the rows, i < h/2 (the paper's
// Sec. 4.2 mask: the coupling changes the bottom half from the top half).
func Horizontal(h, w, c int, reverse bool) *tensor.Tensor {
	return build(h, w, c, reverse, func(i, _, _ int) bool { return i < h/2 })
}

// Vertical keeps the left half of the columns, j < w/2.
func Vertical(h, w, c int, reverse bool) *tensor.Tensor {
	return build(h, w, c, reverse, func(_, j, _ int) bool { return j < w/2 })
}

// CentreMargin returns the margin of the centre mask for a side of n
// pixels: round(n(1 - 1/√2)/2), so that the central rectangle holds about
// half of the image (4 for 28, as the reference code's MaskCenter).
func CentreMargin(n int) int {
	return int(float64(n)*(1-0.7071067811865476)/2 + 0.5)
}

// Centre keeps the central rectangle: rows and columns at least
// CentreMargin from every border.
func Centre(h, w, c int, reverse bool) *tensor.Tensor {
	mh, mw := CentreMargin(h), CentreMargin(w)
	return build(h, w, c, reverse, func(i, j, _ int) bool {
		return i >= mh && i < h-mh && j >= mw && j < w-mw
	})
}

// Quadrant keeps quadrant q (taken mod 4) of the image, numbered clockwise
// from the top left as in Fig. 12 of the paper and the reference code:
// 0 top-left, 1 top-right, 2 bottom-right, 3 bottom-left. The top rows are
// i < h/2, the left columns j < w/2.
func Quadrant(h, w, c, q int) *tensor.Tensor {
	return build(h, w, c, false, func(i, j, _ int) bool { return QuadrantOf(i, j, h, w) == q%4 })
}

// QuadrantOf returns the quadrant (numbered as in Quadrant) of pixel (i, j)
// of an h x w image.
func QuadrantOf(i, j, h, w int) int {
	top, left := i < h/2, j < w/2
	switch {
	case top && left:
		return 0
	case top:
		return 1
	case !left:
		return 2
	}
	return 3
}

// Bitmap keeps the pixels where bits[i*w+j] is true, in every channel.
func Bitmap(h, w, c int, bits []bool, reverse bool) *tensor.Tensor {
	if len(bits) != h*w {
		panic(fmt.Sprintf("mask: bitmap of %d bits for %dx%d", len(bits), h, w))
	}
	return build(h, w, c, reverse, func(i, j, _ int) bool { return bits[i*w+j] })
}

// Pair is the masks of one coupling: Cond is 1 where the coupling
// conditions on its input (its st-network sees Cond⊙x), Trans is 1 where
// it transforms it. Both have shape [H, W, C] and they are disjoint.
type Pair struct {
	Cond, Trans *tensor.Tensor
}

// Complement returns the pair conditioning on m and transforming the rest
// (Trans = 1 - m), the classic RealNVP coupling.
func Complement(m *tensor.Tensor) Pair {
	inv := tensor.New(m.Shape...)
	for i, v := range m.Data {
		inv.Data[i] = 1 - v
	}
	return Pair{Cond: m, Trans: inv}
}

// Check reports masks of different shapes, not [H, W, C], holding values
// other than 0 and 1, or overlapping.
func (p Pair) Check() error {
	if p.Cond == nil || p.Trans == nil {
		return fmt.Errorf("mask: pair with a nil mask")
	}
	if len(p.Cond.Shape) != 3 || !tensor.SameShape(p.Cond.Shape, p.Trans.Shape) {
		return fmt.Errorf("mask: pair of shapes %v and %v, want the same [H, W, C]", p.Cond.Shape, p.Trans.Shape)
	}
	for i, a := range p.Cond.Data {
		b := p.Trans.Data[i]
		if (a != 0 && a != 1) || (b != 0 && b != 1) {
			return fmt.Errorf("mask: value %v/%v at %d, want 0 or 1", a, b, i)
		}
		if a == 1 && b == 1 {
			return fmt.Errorf("mask: conditioning and transformed masks overlap at %d", i)
		}
	}
	return nil
}

// Untouched returns the mask of what p neither sees nor changes:
// 1 - Cond - Trans.
func (p Pair) Untouched() *tensor.Tensor {
	u := tensor.New(p.Cond.Shape...)
	for i := range u.Data {
		u.Data[i] = 1 - p.Cond.Data[i] - p.Trans.Data[i]
	}
	return u
}

// ChannelSplit reports whether m is a channel mask (one contiguous half of
// the channels kept everywhere) and, if so, whether the kept half is the
// first one. Couplings use it to feed their st-network only the kept
// channels.
func ChannelSplit(m *tensor.Tensor) (firstKept, ok bool) {
	h, w, c := m.Shape[0], m.Shape[1], m.Shape[2]
	if c%2 != 0 {
		return false, false
	}
	for _, first := range []bool{true, false} {
		if equal(m, Channel(h, w, c, !first)) {
			return first, true
		}
	}
	return false, false
}

// Name returns the name of the mask m of shape [H, W, C] (1 = kept) if it
// is one of this package's named masks in either orientation,
// "checkerboard", "channel", "horizontal" or "vertical", and "custom"
// otherwise.
func Name(m *tensor.Tensor) string {
	h, w, c := m.Shape[0], m.Shape[1], m.Shape[2]
	named := []struct {
		name  string
		build func(h, w, c int, reverse bool) *tensor.Tensor
	}{{"checkerboard", Checkerboard}, {"channel", Channel}, {"horizontal", Horizontal}, {"vertical", Vertical}}
	for _, n := range named {
		if n.name == "channel" && c%2 != 0 {
			continue
		}
		for _, rev := range []bool{false, true} {
			if equal(m, n.build(h, w, c, rev)) {
				return n.name
			}
		}
	}
	return "custom"
}

func equal(a, b *tensor.Tensor) bool {
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			return false
		}
	}
	return true
}
