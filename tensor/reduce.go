package tensor

import (
	"math"
)

// SumPerExample returns, for x of shape [N, ...], the [N] tensor of sums over
// each example's elements, accumulated in float64.
func SumPerExample(x *Tensor) *Tensor {
	p := passOf(x)
	n := x.Shape[0]
	d := len(x.Data) / max(n, 1)
	out := New(n)
	p.par().ParallelFor(n, 1, func(lo, hi int) {
		for e := lo; e < hi; e++ {
			var s float64
			for _, v := range x.Data[e*d : (e+1)*d] {
				s += float64(v)
			}
			out.Data[e] = float32(s)
		}
	})
	record(out, func() {
		gx := x.grad()
		p.par().ParallelFor(n, 1, func(lo, hi int) {
			for e := lo; e < hi; e++ {
				g := out.Grad[e]
				gs := gx[e*d : (e+1)*d]
				for j := range gs {
					gs[j] += g
				}
			}
		})
	}, x)
	return out
}

// Sum returns the one-element tensor holding the sum of x, accumulated in
// float64.
func Sum(x *Tensor) *Tensor {
	p := passOf(x)
	out := New(1)
	var s float64
	for _, v := range x.Data {
		s += float64(v)
	}
	out.Data[0] = float32(s)
	record(out, func() {
		g := out.Grad[0]
		gx := x.grad()
		p.each(len(gx), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gx[i] += g
			}
		})
	}, x)
	return out
}

// Mean returns the one-element tensor holding the mean of x.
func Mean(x *Tensor) *Tensor { return Scale(Sum(x), 1/float32(len(x.Data))) }

// halfLog2Pi is ln(2π)/2.
var halfLog2Pi = 0.5 * math.Log(2*math.Pi)

// StdNormalLogProb returns, for z of shape [N, ...], the [N] log-densities
// of z under the standard normal: sum_j -(z_j^2 + ln 2π)/2.
func StdNormalLogProb(z *Tensor) *Tensor {
	p := passOf(z)
	n := z.Shape[0]
	d := len(z.Data) / max(n, 1)
	out := New(n)
	p.par().ParallelFor(n, 1, func(lo, hi int) {
		for e := lo; e < hi; e++ {
			var s float64
			for _, v := range z.Data[e*d : (e+1)*d] {
				s += float64(v) * float64(v)
			}
			out.Data[e] = float32(-0.5*s - float64(d)*halfLog2Pi)
		}
	})
	record(out, func() {
		gz := z.grad()
		p.par().ParallelFor(n, 1, func(lo, hi int) {
			for e := lo; e < hi; e++ {
				g := out.Grad[e]
				for j := e * d; j < (e+1)*d; j++ {
					gz[j] -= g * z.Data[j]
				}
			}
		})
	}, z)
	return out
}
