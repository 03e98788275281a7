package tensor

import (
	"fmt"

	"github.com/flowood/flowood/kernels"
)

// AddConv2D returns acc + Conv2DBias(x, w, b, pad), acc having the
// convolution's output shape. For the residual and skip sums of
// st-networks it is one operation where it can be:
//
//   - In a gradient-free pass, when acc is an intermediate that alone
//     holds its buffer (no view shares it), the sum is formed in that buffer: the convolution's output
//     is accumulated straight into it (the Winograd output transform and
//     the GEMM of a 1x1 convolution add into their destination), with no
//     buffer and no addition pass of its own, and acc itself is returned,
//     its old value gone as after Done.
//   - With gradients recorded, for Winograd and 1x1 convolutions, the
//     output starts as a copy of acc (plus the bias, for 1x1) and the
//     convolution is accumulated into it; the backward pass hands the
//     output gradient to the convolution's backward and then to acc,
//     both reading the same buffer. That saves writing and reading the
//     convolution's own output and copying its gradient.
//
// Otherwise it is Add(acc, Conv2DBias(x, w, b, pad)).
func AddConv2D(acc, x, w, b *Tensor, pad int) *Tensor {
	g := newConvGeom("AddConv2D", x, w, pad)
	if want := []int{g.N, g.OH, g.OW, g.Cout}; !SameShape(acc.Shape, want) {
		panic(fmt.Sprintf("tensor: AddConv2D into %v of a convolution giving %v", acc.Shape, want))
	}
	if b != nil && (len(b.Shape) != 1 || b.Shape[0] != g.Cout) {
		panic(fmt.Sprintf("tensor: AddConv2D with weights %v and bias %v", w.Shape, b.Shape))
	}
	wino := winogradTile(g)
	oneByOne := g.KH == 1 && g.KW == 1 && pad == 0
	p := passOf(acc, x, w, b)
	par := p.par()
	recorded := AnyRequiresGrad(acc, x, w, b)
	if (recorded && wino == 0 && !oneByOne) || (!recorded && (p.Grad() || !acc.exclusive() || acc.node != nil)) {
		y := Conv2DBias(x, w, b, pad)
		s := Add(acc, y)
		Done(y)
		return s
	}
	bias := dataOf(b)
	out := acc
	if recorded {
		out = newOut(p, acc.Shape)
		if !(oneByOne && bias != nil) {
			p.each(len(out.Data), func(lo, hi int) { copy(out.Data[lo:hi], acc.Data[lo:hi]) })
		}
	}
	m := g.N * g.H * g.W
	switch {
	case wino != 0:
		winogradConv(p, out.Data, x.Data, w.Data, bias, g.N, g.H, g.W, g.Cin, g.Cout, wino, true, isParam(w))
	case oneByOne:
		if bias != nil {
			// out = acc + b (out may be acc): one pass, ahead of the GEMM.
			ones := alloc(g.Cout)
			for i := range ones {
				ones[i] = 1
			}
			c := g.Cout
			par.ParallelFor(m, grain/c+1, func(lo, hi int) {
				kernels.AffineRows(out.Data[lo*c:hi*c], acc.Data[lo*c:hi*c], ones, bias)
			})
			release(ones)
		}
		par.Sgemm(false, false, m, g.Cout, g.Cin, 1, x.Data, g.Cin, w.Data, g.Cout, 1, out.Data, g.Cout)
	default:
		y := conv2D(x, w, b, pad)
		p.each(len(out.Data), func(lo, hi int) { kernels.AddTo(out.Data[lo:hi], y.Data[lo:hi]) })
		y.drop()
	}
	if !recorded {
		return out
	}
	record(out, func() {
		gy := out.Grad
		if oneByOne {
			matMulBackward(par, x, w, b, gy, g.Cin, g.Cout)
		} else {
			g.backward(x, w, b, gy, wino)
		}
		if needs(acc) {
			passGrad(acc, out)
		}
	}, acc, x, w, b)
	return out
}
