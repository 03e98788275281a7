package tensor

import (
	"fmt"

	"github.com/flowood/flowood/kernels"
)

// AddConv2D returns acc + Conv2DBias(x, w, b, pad), acc having the
// convolution's output shape. In a gradient-free pass, when acc is an
// intermediate that owns its buffer, the sum is formed in that buffer: the
// convolution's output is accumulated straight into it (the Winograd
// output transform and the GEMM of a 1x1 convolution add into their
// destination), with no buffer and no addition pass of its own, and acc
// itself is returned, its old value gone as after Done. Otherwise
// (gradients recorded, or acc an input, a parameter or a view) it is
// Add(acc, Conv2DBias(x, w, b, pad)). For the residual and skip sums of
// st-networks in evaluation.
func AddConv2D(acc, x, w, b *Tensor, pad int) *Tensor {
	if GradEnabled() || !acc.owned || acc.node != nil {
		y := Conv2DBias(x, w, b, pad)
		s := Add(acc, y)
		Done(y)
		return s
	}
	if len(x.Shape) != 4 || len(w.Shape) != 4 || w.Shape[2] != x.Shape[3] {
		panic(fmt.Sprintf("tensor: AddConv2D of %v by weights %v", x.Shape, w.Shape))
	}
	g := &convGeom{N: x.Shape[0], H: x.Shape[1], W: x.Shape[2], Cin: x.Shape[3],
		KH: w.Shape[0], KW: w.Shape[1], Cout: w.Shape[3], Pad: pad}
	g.OH, g.OW = g.H+2*pad-g.KH+1, g.W+2*pad-g.KW+1
	if want := []int{g.N, g.OH, g.OW, g.Cout}; !SameShape(acc.Shape, want) {
		panic(fmt.Sprintf("tensor: AddConv2D into %v of a convolution giving %v", acc.Shape, want))
	}
	if b != nil && (len(b.Shape) != 1 || b.Shape[0] != g.Cout) {
		panic(fmt.Sprintf("tensor: AddConv2D with weights %v and bias %v", w.Shape, b.Shape))
	}
	var bias []float32
	if b != nil {
		bias = b.Data
	}
	switch {
	case winogradTile(g) != 0:
		winogradConv(acc.Data, x.Data, w.Data, bias, g.N, g.H, g.W, g.Cin, g.Cout, winogradTile(g), true)
	case g.KH == 1 && g.KW == 1 && pad == 0:
		m := g.N * g.H * g.W
		kernels.Sgemm(false, false, m, g.Cout, g.Cin, 1, x.Data, g.Cin, w.Data, g.Cout, 1, acc.Data, g.Cout)
		if bias != nil {
			ones := alloc(g.Cout)
			for i := range ones {
				ones[i] = 1
			}
			c := g.Cout
			kernels.ParallelFor(m, grain/c+1, func(lo, hi int) {
				kernels.AffineRows(acc.Data[lo*c:hi*c], acc.Data[lo*c:hi*c], ones, bias)
			})
			release(ones)
		}
	default:
		y := conv2D(x, w, b, pad)
		each(len(acc.Data), func(lo, hi int) { kernels.AddTo(acc.Data[lo:hi], y.Data[lo:hi]) })
		Release(y)
	}
	return acc
}
