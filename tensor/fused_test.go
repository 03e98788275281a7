package tensor

// Checks of BatchNormReLU and of the vectorised paths of the other
// operations, in the style of gradcheck_test.go: float64 references,
// finite differences, every kernel set of package kernels.

import (
	"fmt"
	"math"
	"testing"

	"github.com/flowood/flowood/kernels"
)

// forEachKernelSet runs f once with every kernel set of package kernels
// (AVX-512, AVX2, generic where available).
func forEachKernelSet(t *testing.T, f func(t *testing.T)) {
	defer kernels.SetMicroKernel("auto")
	for _, name := range kernels.MicroKernels() {
		if !kernels.SetMicroKernel(name) {
			t.Fatalf("SetMicroKernel(%q) failed", name)
		}
		t.Run(name, f)
	}
}

func refRelu(a arr) arr { return refMap(a, func(v float64) float64 { return math.Max(v, 0) }) }

func TestBatchNormReLU(t *testing.T) {
	forEachKernelSet(t, func(t *testing.T) {
		rng := gcRNG(20)
		cases := []struct {
			shape     []int
			mean, std float64
		}{
			{[]int{4, 3}, 0, 1},
			{[]int{3, 4, 5, 2}, 0.5, 2},
			{[]int{2, 5, 7, 3}, 3, 0.5},
			{[]int{64, 2}, 10, 0.1}, // |mean| >> std
			{[]int{2, 3, 4, 16}, 0, 1},
			{[]int{3, 3, 3, 17}, -1, 0.5},
			{[]int{2, 4, 4, 32}, 0, 1},
		}
		for _, c := range cases {
			for _, train := range []bool{true, false} {
				for _, which := range []string{"all", "x", "params"} {
					if which != "all" && c.shape[0] != 3 {
						continue
					}
					ch := c.shape[len(c.shape)-1]
					x := normal(rng, c.mean, c.std, c.shape...)
					gamma := uniform(rng, 0.5, 1.5, ch)
					beta := normal(rng, 0, 1, ch)
					x.SetRequiresGrad(which != "params")
					gamma.SetRequiresGrad(which != "x")
					beta.SetRequiresGrad(which != "x")
					stats := &BatchNormStats{Mean: make([]float32, ch), Var: make([]float32, ch), Momentum: 0.1, Eps: 1e-5}
					var mean, variance []float64
					if !train {
						rm, rv := normal(rng, c.mean, 1, ch), uniform(rng, 0.2, 3, ch)
						stats.Mean, stats.Var = rm.Data, rv.Data
						mean, variance = toArr(rm).data, toArr(rv).data
					}
					checkGradOpts(t, fmt.Sprintf("BatchNormReLU train=%v x%v mean %v std %v/%s", train, c.shape, c.mean, c.std, which),
						[]*Tensor{x, gamma, beta},
						func(in []*Tensor) *Tensor { return BatchNormReLU(in[0], in[1], in[2], stats, train) },
						func(in []arr) arr { return refRelu(refBatchNorm(in[0], in[1], in[2], mean, variance, 1e-5)) },
						gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-5})
				}
			}
		}
	})
}

// TestBatchNormReLUMatchesUnfused checks that the fused operation computes
// the values and gradients of Relu(BatchNorm(·)), and updates the running
// statistics alike.
func TestBatchNormReLUMatchesUnfused(t *testing.T) {
	forEachKernelSet(t, func(t *testing.T) {
		rng := gcRNG(21)
		for _, shape := range [][]int{{5, 3}, {2, 6, 6, 16}, {3, 5, 5, 17}, {2, 7, 7, 32}} {
			ch := shape[len(shape)-1]
			x0 := normal(rng, 0.3, 1.2, shape...)
			g0 := uniform(rng, 0.5, 1.5, ch)
			b0 := normal(rng, 0, 1, ch)
			r := normal(rng, 0, 1, shape...)
			run := func(fused bool) (y, gx, gg, gb, rm, rv []float32) {
				x, gamma, beta := param(x0.Clone()), param(g0.Clone()), param(b0.Clone())
				st := &BatchNormStats{Mean: make([]float32, ch), Var: make([]float32, ch), Momentum: 0.1, Eps: 1e-5}
				// Tanh makes x's gradient an intermediate one
				h := Tanh(x)
				var out *Tensor
				if fused {
					out = BatchNormReLU(h, gamma, beta, st, true)
				} else {
					out = Relu(BatchNorm(h, gamma, beta, st, true))
				}
				y = append([]float32(nil), out.Data...)
				Backward(Sum(Mul(out, r)))
				return y, x.Grad, gamma.Grad, beta.Grad, st.Mean, st.Var
			}
			y1, gx1, gg1, gb1, m1, v1 := run(true)
			y2, gx2, gg2, gb2, m2, v2 := run(false)
			for _, p := range []struct {
				what     string
				got, ref []float32
			}{{"output", y1, y2}, {"dL/dx", gx1, gx2}, {"dL/dgamma", gg1, gg2}, {"dL/dbeta", gb1, gb2}, {"running mean", m1, m2}, {"running variance", v1, v2}} {
				for i := range p.got {
					if p.got[i] != p.ref[i] {
						t.Errorf("BatchNormReLU %v: %s[%d] = %v, Relu(BatchNorm) gives %v", shape, p.what, i, p.got[i], p.ref[i])
						break
					}
				}
			}
		}
	})
}

// TestFreshGradients covers the backward passes that write a gradient
// buffer the first time instead of adding to it: the input of each
// operation is an intermediate (Tanh(x)) whose gradient does not exist
// yet, and in the "twice" cases it is used again, so the second use adds.
func TestFreshGradients(t *testing.T) {
	forEachKernelSet(t, func(t *testing.T) {
		rng := gcRNG(22)
		th := func(in []arr) arr { return refMap(in[0], math.Tanh) }
		for _, ch := range []int{3, 16, 17} {
			shape := []int{2, 3, 4, ch}
			x := func() *Tensor { return param(normal(rng, 0, 1, shape...)) }
			b := param(normal(rng, 0, 1, ch))
			name := func(s string) string { return fmt.Sprintf("%s c=%d", s, ch) }
			checkGrad(t, name("Add(Tanh(x), y)"), []*Tensor{x(), x()},
				func(in []*Tensor) *Tensor { return Add(Tanh(in[0]), in[1]) },
				func(in []arr) arr { return refZip(th(in), in[1], func(a, b float64) float64 { return a + b }) })
			checkGrad(t, name("Add(t, t), t = Tanh(x)"), []*Tensor{x()},
				func(in []*Tensor) *Tensor { h := Tanh(in[0]); return Add(h, h) },
				func(in []arr) arr { return refMap(th(in), func(v float64) float64 { return 2 * v }) })
			checkGrad(t, name("AddChannel(Tanh(x), b)"), []*Tensor{x(), b},
				func(in []*Tensor) *Tensor { return AddChannel(Tanh(in[0]), in[1]) },
				func(in []arr) arr {
					return refPerChannel(th(in), in[1], func(x, b float64) float64 { return x + b })
				})
			checkGrad(t, name("MulChannel(Tanh(x), b)"), []*Tensor{x(), b},
				func(in []*Tensor) *Tensor { return MulChannel(Tanh(in[0]), in[1]) },
				func(in []arr) arr {
					return refPerChannel(th(in), in[1], func(x, b float64) float64 { return x * b })
				})
			checkGrad(t, name("Reshape(Tanh(x))"), []*Tensor{x()},
				func(in []*Tensor) *Tensor { return Reshape(Tanh(in[0]), -1, ch) },
				func(in []arr) arr { r := th(in); r.shape = []int{len(r.data) / ch, ch}; return r })
			checkGrad(t, name("Relu(Tanh(x))"), []*Tensor{x()},
				func(in []*Tensor) *Tensor { return Relu(Tanh(in[0])) },
				func(in []arr) arr { return refRelu(th(in)) })
			w := param(normal(rng, 0, 0.5, ch, 5))
			checkGradOpts(t, name("MatMul(Tanh(x), w)"), []*Tensor{x(), w},
				func(in []*Tensor) *Tensor { return MatMul(Tanh(in[0]), in[1]) },
				func(in []arr) arr { return refMatMul(th(in), in[1]) }, gemmTol)
			checkGradOpts(t, name("MatMul(t, w) + t·w, t = Tanh(x)"), []*Tensor{x(), param(normal(rng, 0, 0.5, ch, ch))},
				func(in []*Tensor) *Tensor { h := Tanh(in[0]); return Add(MatMul(h, in[1]), MatMul(h, in[1])) },
				func(in []arr) arr {
					m := refMatMul(th(in), in[1])
					return refMap(m, func(v float64) float64 { return 2 * v })
				}, gemmTol)
			gamma, beta := param(uniform(rng, 0.5, 1.5, ch)), param(normal(rng, 0, 1, ch))
			for _, relu := range []bool{false, true} {
				op, f := "BatchNorm", BatchNorm
				if relu {
					op, f = "BatchNormReLU", BatchNormReLU
				}
				checkGradOpts(t, name(op+"(Tanh(x)) + Tanh(x)"), []*Tensor{x(), gamma, beta},
					func(in []*Tensor) *Tensor {
						h := Tanh(in[0])
						st := &BatchNormStats{Momentum: 0.1, Eps: 1e-5}
						return Add(f(h, in[1], in[2], st, true), h)
					},
					func(in []arr) arr {
						h := th(in)
						y := refBatchNorm(h, in[1], in[2], nil, nil, 1e-5)
						if relu {
							y = refRelu(y)
						}
						return refZip(y, h, func(a, b float64) float64 { return a + b })
					}, gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-5})
			}
		}
	})
}

// TestWideChannelOps runs the per-channel operations of gradcheck_test.go
// with channel counts that take the vectorised paths: multiples of 16 and
// wider counts with a remainder.
func TestWideChannelOps(t *testing.T) {
	forEachKernelSet(t, func(t *testing.T) {
		rng := gcRNG(23)
		for _, ch := range []int{16, 17, 32, 40} {
			shape := []int{3, 2, 5, ch}
			name := func(s string) string { return fmt.Sprintf("%s c=%d", s, ch) }
			x, v := param(normal(rng, 0, 1, shape...)), param(normal(rng, 0, 1, ch))
			checkGrad(t, name("AddChannel"), []*Tensor{x, v},
				func(in []*Tensor) *Tensor { return AddChannel(in[0], in[1]) },
				func(in []arr) arr { return refPerChannel(in[0], in[1], func(x, b float64) float64 { return x + b }) })
			checkGrad(t, name("MulChannel"), []*Tensor{x, v},
				func(in []*Tensor) *Tensor { return MulChannel(in[0], in[1]) },
				func(in []arr) arr { return refPerChannel(in[0], in[1], func(x, b float64) float64 { return x * b }) })
			xs := normal(rng, 5, 0.2, shape...) // |mean| >> std
			xs.SetRequiresGrad(true)
			gamma, beta := param(uniform(rng, 0.5, 1.5, ch)), param(normal(rng, 0, 1, ch))
			checkGradOpts(t, name("BatchNorm train"), []*Tensor{xs, gamma, beta},
				func(in []*Tensor) *Tensor {
					return BatchNorm(in[0], in[1], in[2], &BatchNormStats{Momentum: 0.1, Eps: 1e-5}, true)
				},
				func(in []arr) arr { return refBatchNorm(in[0], in[1], in[2], nil, nil, 1e-5) },
				gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-5})
		}
	})
}

// TestCReLU checks CReLU against the float64 reference, with gradients
// into leaves and fresh intermediates, and its outputs and gradients bit
// for bit against Relu(Concat(x, Neg(x))).
func TestCReLU(t *testing.T) {
	rng := gcRNG(61)
	for _, shape := range [][]int{{3, 4, 5, 1}, {2, 7, 7, 2}, {5, 4}} {
		ref := func(in []arr) arr {
			c := in[0].shape[len(in[0].shape)-1]
			outShape := append(append([]int(nil), in[0].shape[:len(in[0].shape)-1]...), 2*c)
			out := newArr(outShape...)
			for i, v := range in[0].data {
				r, j := i/c, i%c
				out.data[r*2*c+j], out.data[r*2*c+c+j] = math.Max(v, 0), math.Max(-v, 0)
			}
			return out
		}
		x := param(normal(rng, 0, 1, shape...))
		checkGrad(t, fmt.Sprintf("CReLU%v", shape), []*Tensor{x},
			func(in []*Tensor) *Tensor { return CReLU(in[0]) }, ref)
		checkGrad(t, fmt.Sprintf("CReLU(Tanh)%v", shape), []*Tensor{x},
			func(in []*Tensor) *Tensor { return CReLU(Tanh(in[0])) },
			func(in []arr) arr { return ref([]arr{refMap(in[0], math.Tanh)}) })
		var w *Tensor
		run := func(fused bool) (y, g []float32) {
			xx := param(x.Clone())
			var out *Tensor
			if fused {
				out = CReLU(Tanh(xx))
			} else {
				h := Tanh(xx)
				out = Relu(Concat(h, Neg(h)))
			}
			y = append([]float32(nil), out.Data...)
			if w == nil {
				w = normal(rng, 0, 1, out.Shape...)
			}
			Backward(Sum(Mul(out, w)))
			return y, xx.Grad
		}
		y1, g1 := run(true)
		y2, g2 := run(false)
		for _, c := range []struct {
			what     string
			got, ref []float32
		}{{"output", y1, y2}, {"input gradient", g1, g2}} {
			for i := range c.got {
				if math.Float32bits(c.got[i]) != math.Float32bits(c.ref[i]) {
					t.Fatalf("CReLU%v %s[%d] = %v, Relu(Concat(x, Neg(x))) %v", shape, c.what, i, c.got[i], c.ref[i])
				}
			}
		}
	}
}
