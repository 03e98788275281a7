package mask

import (
	"testing"

	"github.com/flowood/flowood/tensor"
)

func at(m *tensor.Tensor, i, j, k int) float32 {
	return m.Data[(i*m.Shape[1]+j)*m.Shape[2]+k]
}

func TestMasks(t *testing.T) {
	const h, w, c = 4, 6, 2
	for _, tc := range []struct {
		name string
		m    func(rev bool) *tensor.Tensor
		keep func(i, j, k int) bool
	}{
		{"checkerboard", func(r bool) *tensor.Tensor { return Checkerboard(h, w, c, r) }, func(i, j, _ int) bool { return (i+j)%2 == 0 }},
		{"channel", func(r bool) *tensor.Tensor { return Channel(h, w, c, r) }, func(_, _, k int) bool { return k == 0 }},
		{"horizontal", func(r bool) *tensor.Tensor { return Horizontal(h, w, c, r) }, func(i, _, _ int) bool { return i < 2 }},
		{"vertical", func(r bool) *tensor.Tensor { return Vertical(h, w, c, r) }, func(_, j, _ int) bool { return j < 3 }},
		{"quadrant0", func(r bool) *tensor.Tensor { return Quadrant(h, w, c, 0, r) }, func(i, j, _ int) bool { return (i < 2) == (j < 3) }},
		{"quadrant1", func(r bool) *tensor.Tensor { return Quadrant(h, w, c, 1, r) }, func(i, j, _ int) bool { return (i < 2) != (j < 3) }},
		{"bitmap", func(r bool) *tensor.Tensor {
			bits := make([]bool, h*w)
			bits[5], bits[7] = true, true
			return Bitmap(h, w, c, bits, r)
		}, func(i, j, _ int) bool { p := i*w + j; return p == 5 || p == 7 }},
	} {
		m, rev := tc.m(false), tc.m(true)
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				for k := 0; k < c; k++ {
					want := float32(0)
					if tc.keep(i, j, k) {
						want = 1
					}
					if at(m, i, j, k) != want || at(rev, i, j, k) != 1-want {
						t.Fatalf("%s at (%d,%d,%d): mask %v, reverse %v, want %v", tc.name, i, j, k, at(m, i, j, k), at(rev, i, j, k), want)
					}
				}
			}
		}
	}
}

func TestChannelSplit(t *testing.T) {
	if first, ok := ChannelSplit(Channel(2, 2, 4, false)); !ok || !first {
		t.Errorf("Channel(false): first %v ok %v", first, ok)
	}
	if first, ok := ChannelSplit(Channel(2, 2, 4, true)); !ok || first {
		t.Errorf("Channel(true): first %v ok %v", first, ok)
	}
	if _, ok := ChannelSplit(Checkerboard(2, 2, 4, false)); ok {
		t.Error("checkerboard detected as a channel mask")
	}
}
