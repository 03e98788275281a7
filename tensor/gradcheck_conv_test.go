package tensor

// Forward values and backward passes of every operation, checked against
// independent float64 reference implementations written here with naive
// loops. For each case, checkGrad
//
//   - compares the engine's output with the reference forward,
//   - builds L = sum(r * op(inputs)) for a fixed random r (the r-weighted sum
//     is a node defined in this file, so no engine operation is involved in
//     the loss itself), runs Backward, and compares the gradient of every
//     input that requires gradients with central finite differences of the
//     float64 reference (step 1e-4, so the reference gradient is accurate to
//     ~1e-8) on the max-norm,
//   - pre-seeds the inputs' Grad with known values, so a backward pass that
//     overwrites Grad instead of accumulating into it fails,
//   - checks that the inputs were not modified and that constants received
//     no gradient,
//   - reruns the engine in a gradient-free pass and checks that nothing is recorded and
//     the values are identical.

import (
	"fmt"
	"math"
	"testing"
)

// refMatMul multiplies x [..., In] by w [In, Out].
func refMatMul(x, w arr) arr {
	in, out := w.shape[0], w.shape[1]
	rows := len(x.data) / in
	y := newArr(append(append([]int(nil), x.shape[:len(x.shape)-1]...), out)...)
	for r := 0; r < rows; r++ {
		for o := 0; o < out; o++ {
			s := 0.0
			for k := 0; k < in; k++ {
				s += x.data[r*in+k] * w.data[k*out+o]
			}
			y.data[r*out+o] = s
		}
	}
	return y
}

func TestMatMul(t *testing.T) {
	rng := gcRNG(7)
	cases := []struct{ x, w []int }{
		{[]int{7, 13}, []int{13, 5}},        // small GEMM path
		{[]int{33, 17}, []int{17, 9}},       // blocked GEMM path (m*n*k > 4096)
		{[]int{1, 1}, []int{1, 1}},          // degenerate
		{[]int{2, 3, 5, 13}, []int{13, 7}},  // 4-D input
		{[]int{3, 5, 7, 8}, []int{8, 6}},    // 4-D, blocked
		{[]int{4, 1}, []int{1, 6}},          // inner dimension 1
		{[]int{2, 2, 2, 10}, []int{10, 60}}, // wide output
		{[]int{70, 13}, []int{13, 5}},       // narrow output: zero-padded weights
		{[]int{2, 8, 8, 16}, []int{16, 2}},  // narrow output, 4-D
	}
	for _, c := range cases {
		for _, which := range []string{"both", "x", "w"} {
			x, w := normal(rng, 0, 1, c.x...), normal(rng, 0, 1, c.w...)
			x.SetRequiresGrad(which != "w")
			w.SetRequiresGrad(which != "x")
			checkGradOpts(t, fmt.Sprintf("MatMul%v%v/%s", c.x, c.w, which), []*Tensor{x, w},
				func(in []*Tensor) *Tensor { return MatMul(in[0], in[1]) },
				func(in []arr) arr { return refMatMul(in[0], in[1]) }, gemmTol)
		}
	}
}

// refConv is the stride-1 cross-correlation of NHWC x with HWIO w and zero
// padding pad, as a 7-deep loop with explicit bounds checks (output channel
// innermost, so both w and y are read contiguously).
func refConv(x, w arr, pad int) arr {
	N, H, W, Cin := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	KH, KW, Cout := w.shape[0], w.shape[1], w.shape[3]
	OH, OW := H+2*pad-KH+1, W+2*pad-KW+1
	y := newArr(N, OH, OW, Cout)
	for n := 0; n < N; n++ {
		for oh := 0; oh < OH; oh++ {
			for ow := 0; ow < OW; ow++ {
				ys := y.data[((n*OH+oh)*OW+ow)*Cout:][:Cout]
				for kh := 0; kh < KH; kh++ {
					for kw := 0; kw < KW; kw++ {
						ih, iw := oh+kh-pad, ow+kw-pad
						if ih < 0 || ih >= H || iw < 0 || iw >= W {
							continue // zero padding
						}
						for ci := 0; ci < Cin; ci++ {
							xv := x.data[((n*H+ih)*W+iw)*Cin+ci]
							ws := w.data[((kh*KW+kw)*Cin+ci)*Cout:][:Cout]
							for co := range ys {
								ys[co] += xv * ws[co]
							}
						}
					}
				}
			}
		}
	}
	return y
}

// refConvBackward returns the gradients of sum(r * refConv(x, w, pad))
// with respect to x and w, as loops of the same shape.
func refConvBackward(x, w, r arr, pad int) (gx, gw arr) {
	N, H, W, Cin := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	KH, KW, Cout := w.shape[0], w.shape[1], w.shape[3]
	OH, OW := H+2*pad-KH+1, W+2*pad-KW+1
	gx, gw = newArr(x.shape...), newArr(w.shape...)
	for n := 0; n < N; n++ {
		for oh := 0; oh < OH; oh++ {
			for ow := 0; ow < OW; ow++ {
				for co := 0; co < Cout; co++ {
					g := r.data[((n*OH+oh)*OW+ow)*Cout+co]
					for kh := 0; kh < KH; kh++ {
						for kw := 0; kw < KW; kw++ {
							ih, iw := oh+kh-pad, ow+kw-pad
							if ih < 0 || ih >= H || iw < 0 || iw >= W {
								continue
							}
							for ci := 0; ci < Cin; ci++ {
								xi := ((n*H+ih)*W+iw)*Cin + ci
								wi := ((kh*KW+kw)*Cin+ci)*Cout + co
								gx.data[xi] += g * w.data[wi]
								gw.data[wi] += g * x.data[xi]
							}
						}
					}
				}
			}
		}
	}
	return gx, gw
}

func TestConv2D(t *testing.T) {
	rng := gcRNG(8)
	cases := []struct {
		n, h, w, cin, cout, kh, kw, pad int
	}{
		{1, 5, 7, 1, 1, 3, 3, 1},
		{2, 5, 7, 3, 4, 3, 3, 1},
		{3, 5, 7, 5, 2, 3, 3, 0},
		{3, 5, 7, 5, 5, 3, 3, 1},
		{1, 5, 7, 1, 3, 3, 3, 0},
		{3, 6, 5, 2, 5, 3, 3, 1},
		{1, 4, 4, 2, 5, 1, 1, 0}, // 1x1: MatMul path
		{3, 5, 7, 4, 3, 1, 1, 0}, // 1x1: MatMul path, blocked GEMM
		{2, 5, 7, 4, 3, 1, 1, 1}, // 1x1 with padding: im2col path
		{2, 7, 5, 5, 1, 5, 5, 2},
		{1, 3, 4, 2, 3, 2, 3, 1}, // non-square kernel
		{2, 1, 1, 3, 2, 3, 3, 1}, // image smaller than the kernel
		{2, 2, 3, 1, 4, 3, 3, 2}, // padding wider than needed
		{1, 9, 11, 2, 2, 3, 3, 1},
	}
	for _, c := range cases {
		for _, which := range []string{"both", "x", "w"} {
			if which != "both" && c.n != 2 {
				continue
			}
			x := normal(rng, 0, 1, c.n, c.h, c.w, c.cin)
			w := normal(rng, 0, 0.5, c.kh, c.kw, c.cin, c.cout)
			x.SetRequiresGrad(which != "w")
			w.SetRequiresGrad(which != "x")
			pad := c.pad
			o := gemmTol
			o.noGradMayDiffer = mayTakeImplicitForward(c.cin, c.kh, c.kw, pad)
			checkGradOpts(t, fmt.Sprintf("Conv2D x%v w%v pad %d/%s", x.Shape, w.Shape, pad, which), []*Tensor{x, w},
				func(in []*Tensor) *Tensor { return Conv2D(in[0], in[1], pad) },
				func(in []arr) arr { return refConv(in[0], in[1], pad) }, o)
		}
	}
}

// mayTakeImplicitForward reports whether a gradient-free convolution of
// cin input channels with a kh x kw kernel and padding pad may take the
// implicit GEMM where the recorded one does not (implicitForward).
func mayTakeImplicitForward(cin, kh, kw, pad int) bool {
	return cin < 8 && kh == kw && kh == 2*pad+1 && pad >= 1
}

// TestConv2DBias checks Conv2DBias, and its gradients with respect to
// the images, weights and bias, against the float64 convolution plus the
// bias: on shapes the Winograd path takes (bias folded into the products)
// and on ones the other paths take (a separate AddChannel).
func TestConv2DBias(t *testing.T) {
	rng := gcRNG(81)
	cases := []struct{ n, h, w, cin, cout, k, pad int }{
		{2, 5, 7, 16, 16, 3, 1}, // Winograd, partial tiles
		{1, 6, 4, 17, 20, 3, 1}, // Winograd
		{2, 5, 7, 3, 4, 3, 1},   // few channels: implicit GEMM or im2col
		{2, 4, 4, 5, 3, 1, 0},   // 1x1: MatMul
		{2, 8, 8, 16, 2, 1, 0},  // 1x1, narrow output: zero-padded weights
		{1, 9, 9, 32, 4, 1, 0},  // 1x1, narrow output
		{1, 7, 5, 4, 2, 5, 2},   // 5x5
	}
	for _, c := range cases {
		x := normal(rng, 0, 1, c.n, c.h, c.w, c.cin).SetRequiresGrad(true)
		w := normal(rng, 0, 0.3, c.k, c.k, c.cin, c.cout).SetRequiresGrad(true)
		b := normal(rng, 0, 1, c.cout).SetRequiresGrad(true)
		pad := c.pad
		o := gemmTol
		o.noGradMayDiffer = mayTakeImplicitForward(c.cin, c.k, c.k, pad)
		checkGradOpts(t, fmt.Sprintf("Conv2DBias x%v w%v pad %d", x.Shape, w.Shape, pad), []*Tensor{x, w, b},
			func(in []*Tensor) *Tensor { return Conv2DBias(in[0], in[1], in[2], pad) },
			func(in []arr) arr {
				y := refConv(in[0], in[1], pad)
				for i := range y.data {
					y.data[i] += in[2].data[i%len(in[2].data)]
				}
				return y
			}, o)
	}
	// Without a bias it is the plain convolution.
	x, w := normal(rng, 0, 1, 1, 4, 4, 16), normal(rng, 0, 0.3, 3, 3, 16, 16)
	checkClose(t, "Conv2DBias without bias", Conv2DBias(x, w, nil, 1).Data, refConv(toArr(x), toArr(w), 1).data, 1e-5, 1e-5)
}

// TestConv2DChunks uses a shape whose im2col buffer needs more than one
// chunk (colChunkFloats), with a partial last chunk.
func TestConv2DChunks(t *testing.T) {
	const H, W, KH, KW, pad, cout = 31, 33, 3, 3, 1, 2
	OH, OW := H+2*pad-KH+1, W+2*pad-KW+1
	// Choose Cin so that exactly two images fit in a chunk; three images
	// then make chunks [0, 2) and [2, 3).
	perImage := OH * OW * KH * KW
	cin := int(math.Ceil(float64(colChunkFloats) / 2.9 / float64(perImage)))
	const n = 3
	g := convGeom{OH: OH, OW: OW, K: KH * KW * cin}
	perChunk := min(n, max(1, colChunkFloats/(g.OH*g.OW*g.K)))
	if perChunk != 2 {
		t.Fatalf("test shape gives %d images per chunk, want 2", perChunk)
	}
	rng := gcRNG(9)
	x := param(normal(rng, 0, 1, n, H, W, cin))
	w := param(normal(rng, 0, 0.05, KH, KW, cin, cout))
	// Every sampled coordinate of x (including ones in the second chunk)
	// and of w (whose gradient sums over both chunks).
	checkGradOpts(t, fmt.Sprintf("Conv2D chunked x%v w%v", x.Shape, w.Shape), []*Tensor{x, w},
		func(in []*Tensor) *Tensor { return Conv2D(in[0], in[1], pad) },
		func(in []arr) arr { return refConv(in[0], in[1], pad) },
		gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-5, samples: 3})

	// All coordinates against the float64 adjoint.
	xs, ws := x.Clone().SetRequiresGrad(true), w.Clone().SetRequiresGrad(true)
	y := Conv2D(xs, ws, pad)
	r := make([]float64, len(y.Data))
	for i := range r {
		r[i] = float64(float32(rng.NormFloat64()))
	}
	Backward(dotLoss(y, r))
	gx, gw := refConvBackward(toArr(x), toArr(w), arr{shape: y.Shape, data: r}, pad)
	checkClose(t, "Conv2D chunked: dL/dx", xs.Grad, gx.data, 1e-4, 1e-5)
	checkClose(t, "Conv2D chunked: dL/dw", ws.Grad, gw.data, 1e-4, 1e-5)
}
