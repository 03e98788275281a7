package tensor

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/kernels"
)

// CouplingAffine computes the output and log-determinant of an affine
// coupling from its st-network's output, for evaluation: with x of shape
// [N, ..., C], st of shape [N, ..., 2C] holding the raw scales in its
// first C channels and the shifts t in the others, the per-channel scale
// parameter of shape [C], and mask (nil, or of shape x.Shape[1:]) the
// positions transformed,
//
//	s = tanh(raw)·scale (·mask)    t (·mask)
//	z = (x + t)·exp(s)             ld = Σ s per example (in float64)
//
// It computes exactly what the separate operations do (Split, Tanh,
// MulChannel, MulExample, Add, Exp, Mul and SumPerExample, bit for bit),
// one example at a time in buffers that stay in cache, without their
// allocations and passes: the couplings' ten operations on small tensors
// were 4% of evaluation. It records nothing, and panics if gradients would
// be needed.
func CouplingAffine(x, st, scale, mask *Tensor) (z, ld *Tensor) {
	p := passOf(x, st, scale, mask)
	if AnyRequiresGrad(x, st, scale, mask) {
		panic("tensor: CouplingAffine records no gradients")
	}
	c := x.Dim(-1)
	n := x.Shape[0]
	if len(st.Shape) != len(x.Shape) || !SameShape(st.Shape[:len(st.Shape)-1], x.Shape[:len(x.Shape)-1]) || st.Dim(-1) != 2*c {
		panic(fmt.Sprintf("tensor: CouplingAffine of %v with st %v", x.Shape, st.Shape))
	}
	channelOp("CouplingAffine", x, scale)
	d := len(x.Data) / max(n, 1)
	if mask != nil {
		perExample("CouplingAffine", x, mask)
	}
	z = newOut(p, x.Shape)
	ld = New(n)
	ld.pass = p
	// s·scale + (-0) is s·scale exactly, as in MulChannel.
	negZero := make([]float32, c)
	for j := range negZero {
		negZero[j] = float32(math.Copysign(0, -1))
	}
	p.par().ParallelFor(n, 1, func(lo, hi int) {
		s := alloc(d)
		e := alloc(d)
		for ex := lo; ex < hi; ex++ {
			xs, zs := x.Data[ex*d:(ex+1)*d], z.Data[ex*d:(ex+1)*d]
			sts := st.Data[2*ex*d : 2*(ex+1)*d]
			copyColumns(s, c, 0, sts, 2*c, 0, c)
			kernels.Tanh(s, s)
			kernels.AffineRows(s, s, scale.Data, negZero)
			copyColumns(e, c, 0, sts, 2*c, c, c) // t
			if mask != nil {
				kernels.Mul(s, s, mask.Data)
				kernels.Mul(e, e, mask.Data)
			}
			kernels.Add(zs, xs, e)
			var sum float64
			for _, v := range s {
				sum += float64(v)
			}
			ld.Data[ex] = float32(sum)
			kernels.Exp(e, s)
			kernels.Mul(zs, zs, e)
		}
		release(e)
		release(s)
	})
	return z, ld
}
