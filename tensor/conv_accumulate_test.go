package tensor

import (
	"fmt"
	"math"
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
			p := GradFree()
			acc := Scale(p.Input(base), 1) // an intermediate holding its buffer
			buf := &acc.Data[0]
			got := AddConv2D(acc, x, w, b, c.pad)
			if got != acc || &got.Data[0] != buf {
				t.Errorf("%s: did not accumulate in place", name)
			}
			checkClose(t, name+": in place", got.Data, want.data, 1e-4, 1e-5)

			orig := append([]float32(nil), base.Data...)
			in := p.Input(base)
			got = AddConv2D(in, x, w, b, c.pad)
			if got == in {
				t.Errorf("%s: accumulated into an input", name)
			}
			checkClose(t, name+": input left alone", base.Data, toArr(FromData(orig, base.Shape...)).data, 0, 0)
			checkClose(t, name+": new tensor", got.Data, want.data, 1e-4, 1e-5)

			// An intermediate that a view shares is not overwritten: the
			// view keeps its values.
			acc = Scale(p.Input(base), 1)
			v := Reshape(acc, -1)
			got = AddConv2D(acc, x, w, b, c.pad)
			if got == acc {
				t.Errorf("%s: accumulated into a buffer a view shares", name)
			}
			checkClose(t, name+": shared buffer left alone", v.Data, toArr(FromData(orig, len(orig))).data, 0, 0)
			checkClose(t, name+": beside a view", got.Data, want.data, 1e-4, 1e-5)
			p.Close()
		}
	}
	// With gradients recorded: one operation for Winograd and 1x1
	// convolutions, Add(acc, Conv2DBias(...)) otherwise. acc is also an
	// intermediate (Tanh), whose gradient the backward pass hands over
	// instead of copying, and a constant (only x, w and b need gradients).
	sampled := gemmTol
	sampled.samples = 30
	// The recorded sum is formed in another order (acc, plus the bias,
	// plus the convolution) than the gradient-free one, which also takes
	// other algorithms with few channels.
	sampled.noGradMayDiffer = true
	for _, c := range cases {
		for _, withBias := range []bool{true, false} {
			for _, accKind := range []string{"leaf", "intermediate", "constant"} {
				name := fmt.Sprintf("AddConv2D recorded %dx%dx%dx%d -> %d k%d bias %v acc %s", c.n, c.h, c.w, c.cin, c.cout, c.k, withBias, accKind)
				oh, ow := c.h+2*c.pad-c.k+1, c.w+2*c.pad-c.k+1
				acc := normal(rng, 0, 1, c.n, oh, ow, c.cout).SetRequiresGrad(accKind != "constant")
				x := normal(rng, 0, 1, c.n, c.h, c.w, c.cin).SetRequiresGrad(true)
				w := normal(rng, 0, 0.3, c.k, c.k, c.cin, c.cout).SetRequiresGrad(true)
				ins := []*Tensor{acc, x, w}
				if withBias {
					ins = append(ins, normal(rng, 0, 1, c.cout).SetRequiresGrad(true))
				}
				pad, cout, tanh := c.pad, c.cout, accKind == "intermediate"
				checkGradOpts(t, name, ins,
					func(in []*Tensor) *Tensor {
						a := in[0]
						if tanh {
							a = Tanh(a)
						}
						var b *Tensor
						if len(in) == 4 {
							b = in[3]
						}
						return AddConv2D(a, in[1], in[2], b, pad)
					},
					func(in []arr) arr {
						y := refConv(in[1], in[2], pad)
						for i := range y.data {
							a := in[0].data[i]
							if tanh {
								a = math.Tanh(a)
							}
							y.data[i] += a
							if len(in) == 4 {
								y.data[i] += in[3].data[i%cout]
							}
						}
						return y
					}, sampled)
			}
		}
	}
}

// TestCacheWeightTransforms checks that Winograd convolutions in a pass
// that caches weight transforms give the bits they give outside it, the
// second call reusing the transform, also from a Sub pass; that weights
// which are not parameters are transformed afresh (changing them changes
// the result); that other passes do not see the cache; and that the cache
// is gone after Close.
func TestCacheWeightTransforms(t *testing.T) {
	rng := gcRNG(95)
	for _, side := range []int{28, 14} { // F(4x4, 3x3) and F(2x2, 3x3)
		x1, x2 := normal(rng, 0, 1, 2, side, side, 16), normal(rng, 0, 1, 2, side, side, 16)
		w := normal(rng, 0, 0.3, 3, 3, 16, 16).SetRequiresGrad(true) // a parameter
		var want1, want2 []float32
		p0 := GradFree()
		want1 = Conv2D(p0.Input(x1), w, 1).Data
		want2 = Conv2D(p0.Input(x2), w, 1).Data
		plain := normal(rng, 0, 0.3, 3, 3, 16, 16)
		p := NewPass(PassOptions{CacheWeights: true})
		checkClose(t, "cached, first call", Conv2D(p.Input(x1), w, 1).Data, toArr(FromData(want1, 2, side, side, 16)).data, 0, 0)
		checkClose(t, "cached, second call", Conv2D(p.Input(x2), w, 1).Data, toArr(FromData(want2, 2, side, side, 16)).data, 0, 0)
		// The transform is reused: a parameter changed inside (which the
		// contract forbids) goes unseen, in a Sub pass too, but not in
		// another pass.
		orig := append([]float32(nil), w.Data...)
		for i := range w.Data {
			w.Data[i] *= 2
		}
		checkClose(t, "cached, parameter changed", Conv2D(p.Input(x1), w, 1).Data, toArr(FromData(want1, 2, side, side, 16)).data, 0, 0)
		sub := p.Sub()
		checkClose(t, "cached, Sub pass", Conv2D(sub.Input(x1), w, 1).Data, toArr(FromData(want1, 2, side, side, 16)).data, 0, 0)
		sub.Close()
		checkDoubled(t, "another pass", Conv2D(GradFree().Input(x1), w, 1).Data, want1)
		copy(w.Data, orig)
		before := Conv2D(p.Input(x1), plain, 1).Data
		for i := range plain.Data {
			plain.Data[i] *= 2
		}
		checkDoubled(t, "weights that are not a parameter", Conv2D(p.Input(x1), plain, 1).Data, before)
		p.Close()
		for i := range w.Data {
			w.Data[i] *= 2
		}
		checkDoubled(t, "after the cache", Conv2D(p.Input(x1), w, 1).Data, want1)
	}
}

// checkDoubled fails unless got is twice base, value by value, up to
// rounding (a convolution after its weights were doubled).
func checkDoubled(t *testing.T, what string, got, base []float32) {
	t.Helper()
	for i := range base {
		if d := math.Abs(float64(got[i] - 2*base[i])); d > 1e-5*(1+math.Abs(float64(2*base[i]))) {
			t.Fatalf("%s: %v with doubled weights, want %v", what, got[i], 2*base[i])
		}
	}
}
