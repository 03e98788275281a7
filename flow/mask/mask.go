// Package mask builds the binary masks of coupling layers as data: tensors
// of shape [H, W, C] holding 1 where the coupling conditions on the input
// (the identity part, x_id) and 0 where it transforms it (x_change).
// Reverse swaps the two parts; couplings alternate masks and their reverse.
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

// Horizontal keeps the top half of the rows (the paper's Sec. 4.2 mask).
func Horizontal(h, w, c int, reverse bool) *tensor.Tensor {
	return build(h, w, c, reverse, func(i, _, _ int) bool { return i < h/2 })
}

// Vertical keeps the left half of the columns.
func Vertical(h, w, c int, reverse bool) *tensor.Tensor {
	return build(h, w, c, reverse, func(_, j, _ int) bool { return j < w/2 })
}

// Quadrant keeps one quadrant and the diagonally opposite one: quadrant q
// in 0..3 (top-left, top-right, bottom-left, bottom-right) selects where the
// cycle starts, so layers can cycle q = 0, 1, 2, 3.
func Quadrant(h, w, c, q int, reverse bool) *tensor.Tensor {
	return build(h, w, c, reverse, func(i, j, _ int) bool {
		quad := 2*b2i(i >= h/2) + b2i(j >= w/2)
		return quad == q%4 || quad == 3-q%4
	})
}

// Bitmap keeps the pixels where bits[i*w+j] is true, in every channel.
func Bitmap(h, w, c int, bits []bool, reverse bool) *tensor.Tensor {
	if len(bits) != h*w {
		panic(fmt.Sprintf("mask: bitmap of %d bits for %dx%d", len(bits), h, w))
	}
	return build(h, w, c, reverse, func(i, j, _ int) bool { return bits[i*w+j] })
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

func equal(a, b *tensor.Tensor) bool {
	for i := range a.Data {
		if a.Data[i] != b.Data[i] {
			return false
		}
	}
	return true
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
