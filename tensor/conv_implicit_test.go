package tensor

import (
	"fmt"
	"math"
	"testing"
)

// forcePath sets forceConv for the duration of a test.
func forcePath(t *testing.T, v convAlgo) {
	old := forceConv
	forceConv = v
	t.Cleanup(func() { forceConv = old })
}

// TestConv2DImplicit checks the implicit-GEMM path on same convolutions
// (3x3 pad 1, and 5x5 pad 2) with Cin and Cout from 1 to 64, batches of 1
// to 3 and images from 1x1 to 9x7: the output, and both gradients
// against the float64 adjoint, fresh and accumulated into existing
// gradients, with only one of x and w requiring gradients too.
func TestConv2DImplicit(t *testing.T) {
	forcePath(t, convImplicit)
	checkSameConvs(t)
}

// TestConv2DWinograd runs the same checks with Winograd F(2x2, 3x3) forced
// on the 3x3 convolutions, plus shapes of several tile blocks.
func TestConv2DWinograd(t *testing.T) {
	forcePath(t, convWinograd2)
	// 64 and 96 output channels: products in panels of the micro-kernel's
	// tile width (winoPanels), over several tile blocks.
	checkSameConvs(t, sameConv{3, 30, 29, 16, 16, 3}, sameConv{5, 15, 14, 32, 8, 3},
		sameConv{2, 14, 13, 24, 64, 3}, sameConv{1, 12, 11, 64, 96, 3})
}

// TestConv2DWinograd4 runs them with Winograd F(4x4, 3x3) forced.
func TestConv2DWinograd4(t *testing.T) {
	forcePath(t, convWinograd4)
	checkSameConvs(t, sameConv{3, 30, 29, 16, 16, 3}, sameConv{5, 15, 14, 32, 8, 3}, sameConv{2, 28, 28, 64, 64, 3},
		sameConv{1, 16, 12, 40, 96, 3})
}

// sameConv is a test convolution: batch, height, width, channels in and
// out, and the kernel size k of padding k/2.
type sameConv struct{ n, h, w, cin, cout, k int }

// checkSameConvs checks Conv2D on same convolutions of many shapes, and
// on the extra ones given, against the float64 references.
func checkSameConvs(t *testing.T, extra ...sameConv) {
	rng := gcRNG(31)
	type conv = sameConv
	cases := []conv{
		{1, 1, 1, 1, 1, 3},
		{1, 1, 1, 64, 64, 3},
		{2, 9, 7, 16, 16, 3},
		{3, 7, 9, 32, 32, 3},
		{1, 2, 3, 64, 1, 3},
		{3, 1, 5, 1, 64, 3},
		{2, 5, 1, 3, 17, 3},
		{2, 9, 7, 5, 3, 5},
		{1, 3, 2, 12, 20, 5},
	}
	cases = append(cases, extra...)
	chans := []int{1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64}
	for range 12 {
		cases = append(cases, conv{1 + rng.IntN(3), 1 + rng.IntN(9), 1 + rng.IntN(7),
			chans[rng.IntN(len(chans))], chans[rng.IntN(len(chans))], 3})
	}
	for i, c := range cases {
		pad := c.k / 2
		which := []string{"both", "x", "w"}[i%3]
		name := fmt.Sprintf("n%d %dx%d %d->%d k%d/%s", c.n, c.h, c.w, c.cin, c.cout, c.k, which)
		x := normal(rng, 0, 1, c.n, c.h, c.w, c.cin)
		w := normal(rng, 0, 0.5, c.k, c.k, c.cin, c.cout)
		x.SetRequiresGrad(which != "w")
		w.SetRequiresGrad(which != "x")
		y := Conv2D(x, w, pad)
		ref := refConv(toArr(x), toArr(w), pad)
		checkClose(t, name+": y", y.Data, ref.data, 1e-5, 1e-5)
		r := make([]float64, len(y.Data))
		for j := range r {
			r[j] = float64(float32(rng.NormFloat64()))
		}
		gx, gw := refConvBackward(toArr(x), toArr(w), arr{shape: y.Shape, data: r}, pad)
		Backward(dotLoss(y, r))
		if which != "w" {
			checkClose(t, name+": dL/dx", x.Grad, gx.data, 1e-4, 1e-5)
		} else if x.Grad != nil {
			t.Errorf("%s: x got a gradient", name)
		}
		if which != "x" {
			checkClose(t, name+": dL/dw", w.Grad, gw.data, 1e-4, 1e-5)
		} else if w.Grad != nil {
			t.Errorf("%s: w got a gradient", name)
		}
		// A second pass adds to the gradients.
		Backward(dotLoss(Conv2D(x, w, pad), r))
		for j := range gx.data {
			gx.data[j] *= 2
		}
		for j := range gw.data {
			gw.data[j] *= 2
		}
		if which != "w" {
			checkClose(t, name+": accumulated dL/dx", x.Grad, gx.data, 1e-4, 1e-5)
		}
		if which != "x" {
			checkClose(t, name+": accumulated dL/dw", w.Grad, gw.data, 1e-4, 1e-5)
		}
	}
}

// TestConv2DPathsAgree runs the gradient checks of Conv2D with each
// algorithm forced, so that both are checked on every shape they take,
// whichever the shape dispatch picks.
func TestConv2DPathsAgree(t *testing.T) {
	for _, v := range []convAlgo{convImplicit, convIm2col, convImplicitForward, convImplicitBackward, convWinograd2, convWinograd4} {
		t.Run(v.String(), func(t *testing.T) {
			forcePath(t, v)
			TestConv2D(t)
			TestConv2DBias(t)
			TestGradAccumulation(t)
		})
	}
}

// BenchmarkConv2DPaths times both convolution algorithms on same 3x3
// convolutions across channel counts and image sizes, forward and
// forward+backward, to place the dispatch crossover.
func BenchmarkConv2DPaths(b *testing.B) {
	for _, c := range []struct{ n, h, cin, cout int }{
		{32, 28, 2, 16},
		{32, 14, 4, 32},
		{64, 28, 2, 16},
		{64, 28, 4, 16},
		{64, 14, 4, 32},
		{64, 28, 32, 32},
		{64, 14, 48, 48},
		{64, 28, 8, 8},
		{64, 28, 16, 16},
		{64, 14, 32, 32},
		{64, 28, 64, 64},
		{64, 14, 64, 64},
		{64, 7, 128, 128},
	} {
		rng := NewRNG(1)
		x := Randn(rng, c.n, c.h, c.h, c.cin).SetRequiresGrad(true)
		w := Randn(rng, 3, 3, c.cin, c.cout).SetRequiresGrad(true)
		for _, path := range []convAlgo{convIm2col, convImplicit, convWinograd2, convWinograd4} {
			name := fmt.Sprintf("n%d_%dx%d_%dto%d/%s", c.n, c.h, c.h, c.cin, c.cout, path)
			b.Run(name+"/forward", func(b *testing.B) {
				old := forceConv
				forceConv = path
				defer func() { forceConv = old }()
				gradFreeConv(x, w) // warm the buffers
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					gradFreeConv(x, w)
				}
			})
			b.Run(name+"/forward+backward", func(b *testing.B) {
				old := forceConv
				forceConv = path
				defer func() { forceConv = old }()
				Backward(Sum(Conv2D(x, w, 1))) // warm the buffers
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					x.Grad, w.Grad = nil, nil
					Backward(Sum(Conv2D(x, w, 1)))
				}
			})
		}
	}
}

// TestConv2DGradFree checks the forward-only choice of a gradient-free
// convolution (implicit GEMM with few input channels) against the float64
// reference, on the st-networks' input convolutions and odd shapes.
func TestConv2DGradFree(t *testing.T) {
	rng := gcRNG(40)
	for _, c := range []sameConv{{2, 7, 7, 4, 32, 3}, {2, 14, 14, 2, 48, 3}, {3, 7, 5, 1, 16, 3}, {1, 9, 8, 3, 20, 5}} {
		x, w := normal(rng, 0, 1, c.n, c.h, c.w, c.cin), normal(rng, 0, 1, c.k, c.k, c.cin, c.cout)
		g := &convGeom{N: c.n, H: c.h, W: c.w, Cin: c.cin, KH: c.k, KW: c.k, Cout: c.cout, Pad: c.k / 2}
		if implicitConv(g, false) || !implicitForward(g) {
			t.Fatalf("%+v: not a shape the gradient-free choice changes", c)
		}
		var y *Tensor
		y = Conv2D(GradFree().Input(x), w, c.k/2)
		want := refConv(toArr(x), toArr(w), c.k/2)
		for i, v := range want.data {
			if d := math.Abs(float64(y.Data[i]) - v); d > 1e-5*(1+math.Abs(v)) {
				t.Fatalf("%+v: y[%d] = %v, want %v", c, i, y.Data[i], v)
			}
		}
	}
}

// gradFreeConv computes Conv2D(x, w, 1) in a gradient-free pass and
// recycles its buffers.
func gradFreeConv(x, w *Tensor) {
	p := GradFree()
	Conv2D(p.Input(x), w, 1)
	p.Close()
}
