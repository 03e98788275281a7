package tensor

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/kernels"
)

// channelOp checks that v has shape [C] with C the last dimension of x.
func channelOp(op string, x, v *Tensor) int {
	c := x.Dim(-1)
	if len(v.Shape) != 1 || v.Shape[0] != c {
		panic(fmt.Sprintf("tensor: %s of %v by per-channel %v", op, x.Shape, v.Shape))
	}
	return c
}

// AddChannel returns x + b with b of shape [C] broadcast over all but the
// last dimension of x (a bias).
func AddChannel(x, b *Tensor) *Tensor {
	p := passOf(x, b)
	c := channelOp("AddChannel", x, b)
	out := newOut(p, x.Shape)
	rows := len(x.Data) / c
	// x*1 + b is x + b exactly
	ones := make([]float32, c)
	for j := range ones {
		ones[j] = 1
	}
	p.par().ParallelFor(rows, grain/c+1, func(lo, hi int) {
		kernels.AffineRows(out.Data[lo*c:hi*c], x.Data[lo*c:hi*c], ones, b.Data)
	})
	record(out, func() {
		if needs(b) {
			addColumnSums(p.par(), b.grad(), out.Grad, nil, c)
		}
		if needs(x) {
			passGrad(x, out)
		}
	}, x, b)
	return out
}

// MulChannel returns x * s with s of shape [C] broadcast over all but the
// last dimension of x (a per-channel scale).
func MulChannel(x, s *Tensor) *Tensor {
	p := passOf(x, s)
	c := channelOp("MulChannel", x, s)
	out := newOut(p, x.Shape)
	rows := len(x.Data) / c
	// x*s + (-0) is x*s exactly, signed zeros included
	negZero := make([]float32, c)
	for j := range negZero {
		negZero[j] = float32(math.Copysign(0, -1))
	}
	p.par().ParallelFor(rows, grain/c+1, func(lo, hi int) {
		kernels.AffineRows(out.Data[lo*c:hi*c], x.Data[lo*c:hi*c], s.Data, negZero)
	})
	record(out, func() {
		gy := out.Grad
		if needs(x) {
			gx := x.grad()
			p.par().ParallelFor(rows, grain/c+1, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					for j := 0; j < c; j++ {
						gx[r*c+j] += gy[r*c+j] * s.Data[j]
					}
				}
			})
		}
		if needs(s) {
			addColumnSums(p.par(), s.grad(), gy, x.Data, c)
		}
	}, x, s)
	return out
}

// addColumnSums adds to dst[j] the sum over rows r of g[r*c+j] (times
// w[r*c+j] when w is not nil), accumulating in float64.
func addColumnSums(par kernels.Par, dst, g, w []float32, c int) {
	sum, prod := columnMoments(par, g, nil, w, c, w != nil)
	if w != nil {
		sum = prod
	}
	for j, v := range sum {
		dst[j] += float32(v)
	}
}

// perExample checks that m has shape x.Shape[1:].
func perExample(op string, x, m *Tensor) int {
	if !SameShape(x.Shape[1:], m.Shape) {
		panic(fmt.Sprintf("tensor: %s of %v by per-example %v", op, x.Shape, m.Shape))
	}
	return len(m.Data)
}

// MulExample returns x * m with m of shape x.Shape[1:] broadcast over the
// batch (a mask, or a per-position parameter).
func MulExample(x, m *Tensor) *Tensor {
	p := passOf(x, m)
	d := perExample("MulExample", x, m)
	out := newOut(p, x.Shape)
	n := x.Shape[0]
	p.par().ParallelFor(n, 1, func(lo, hi int) {
		for e := lo; e < hi; e++ {
			xs, ys := x.Data[e*d:(e+1)*d], out.Data[e*d:(e+1)*d]
			for j := range ys {
				ys[j] = xs[j] * m.Data[j]
			}
		}
	})
	record(out, func() {
		gy := out.Grad
		if needs(x) {
			gx := x.grad()
			p.par().ParallelFor(n, 1, func(lo, hi int) {
				for e := lo; e < hi; e++ {
					for j := 0; j < d; j++ {
						gx[e*d+j] += gy[e*d+j] * m.Data[j]
					}
				}
			})
		}
		if needs(m) {
			addColumnSums(p.par(), m.grad(), gy, x.Data, d)
		}
	}, x, m)
	return out
}

// Where returns mask ? a : b elementwise, with the constant mask of shape
// a.Shape[1:] (values 0 or 1) broadcast over the batch. Gradients flow to a
// where the mask is 1 and to b where it is 0.
func Where(mask, a, b *Tensor) *Tensor {
	p := passOf(mask, a, b)
	mustSameShape("Where", a, b)
	d := perExample("Where", a, mask)
	out := newOut(p, a.Shape)
	n := a.Shape[0]
	p.par().ParallelFor(n, 1, func(lo, hi int) {
		for e := lo; e < hi; e++ {
			as, bs, ys := a.Data[e*d:(e+1)*d], b.Data[e*d:(e+1)*d], out.Data[e*d:(e+1)*d]
			for j := range ys {
				if mask.Data[j] != 0 {
					ys[j] = as[j]
				} else {
					ys[j] = bs[j]
				}
			}
		}
	})
	record(out, func() {
		gy := out.Grad
		for _, in := range []struct {
			t   *Tensor
			sel bool
		}{{a, true}, {b, false}} {
			if !needs(in.t) {
				continue
			}
			g, sel := in.t.grad(), in.sel
			p.par().ParallelFor(n, 1, func(lo, hi int) {
				for e := lo; e < hi; e++ {
					for j := 0; j < d; j++ {
						if (mask.Data[j] != 0) == sel {
							g[e*d+j] += gy[e*d+j]
						}
					}
				}
			})
		}
	}, a, b)
	return out
}
