package tensor

import (
	"fmt"
	"testing"
)

// TestAddConv2D checks AddConv2D against the float64 convolution plus bias
// plus the accumulator, on every algorithm: in a gradient-free pass into
// an owned intermediate (the same tensor comes back, its buffer reused),
// into an input (left unchanged, a new tensor returned), and with
// gradients recorded (gradients of all four operands).
func TestAddConv2D(t *testing.T) {
	rng := gcRNG(91)
	cases := []struct{ n, h, w, cin, cout, k, pad int }{
		{2, 6, 5, 16, 16, 3, 1}, // Winograd
		{1, 5, 7, 32, 16, 3, 1}, // Winograd, odd sides
		{2, 4, 6, 16, 8, 1, 0},  // 1x1: GEMM accumulating into acc
		{2, 5, 5, 3, 4, 3, 1},   // few channels: implicit GEMM or im2col
		{1, 7, 5, 4, 2, 5, 2},   // 5x5
	}
	for _, c := range cases {
		for _, withBias := range []bool{true, false} {
			name := fmt.Sprintf("%dx%dx%dx%d -> %d k%d bias %v", c.n, c.h, c.w, c.cin, c.cout, c.k, withBias)
			x := normal(rng, 0, 1, c.n, c.h, c.w, c.cin)
			w := normal(rng, 0, 0.3, c.k, c.k, c.cin, c.cout)
			var b *Tensor
			if withBias {
				b = normal(rng, 0, 1, c.cout)
			}
			base := normal(rng, 0, 1, c.n, c.h+2*c.pad-c.k+1, c.w+2*c.pad-c.k+1, c.cout)
			want := refConv(toArr(x), toArr(w), c.pad)
			for i := range want.data {
				want.data[i] += float64(base.Data[i])
				if b != nil {
					want.data[i] += float64(b.Data[i%c.cout])
				}
			}
			NoGrad(func() {
				acc := Scale(base, 1) // an owned intermediate
				buf := &acc.Data[0]
				got := AddConv2D(acc, x, w, b, c.pad)
				if got != acc || &got.Data[0] != buf {
					t.Errorf("%s: did not accumulate in place", name)
				}
				checkClose(t, name+": in place", got.Data, want.data, 1e-4, 1e-5)

				orig := append([]float32(nil), base.Data...)
				got = AddConv2D(base, x, w, b, c.pad)
				if got == base {
					t.Errorf("%s: accumulated into an input", name)
				}
				checkClose(t, name+": input left alone", base.Data, toArr(FromData(orig, base.Shape...)).data, 0, 0)
				checkClose(t, name+": new tensor", got.Data, want.data, 1e-4, 1e-5)
			})
		}
	}
	// With gradients recorded it is Add(acc, Conv2DBias(...)).
	acc := normal(rng, 0, 1, 2, 5, 4, 16).SetRequiresGrad(true)
	x := normal(rng, 0, 1, 2, 5, 4, 16).SetRequiresGrad(true)
	w := normal(rng, 0, 0.3, 3, 3, 16, 16).SetRequiresGrad(true)
	b := normal(rng, 0, 1, 16).SetRequiresGrad(true)
	checkGradOpts(t, "AddConv2D recorded", []*Tensor{acc, x, w, b},
		func(in []*Tensor) *Tensor { return AddConv2D(in[0], in[1], in[2], in[3], 1) },
		func(in []arr) arr {
			y := refConv(in[1], in[2], 1)
			for i := range y.data {
				y.data[i] += in[0].data[i] + in[3].data[i%16]
			}
			return y
		}, gemmTol)
}
