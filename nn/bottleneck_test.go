package nn

import (
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/flowood/flowood/tensor"
)

// TestBottleneckRank checks that a ResNet with a bottleneck of dimension
// l is a function of l numbers: the singular values of its Jacobian (by
// central finite differences) beyond the l-th vanish, while the same
// network without a bottleneck has a Jacobian of much higher rank. It
// also checks that the bottleneck network has no skip connections.
func TestBottleneckRank(t *testing.T) {
	const h, w, in, out, l = 4, 4, 1, 2, 3
	for _, blocks := range []int{1, 2} {
		for _, bl := range []int{0, l} {
			rng := tensor.NewRNG(5)
			mode := &Mode{}
			opt := ResNetOptions{WeightNorm: true, Bottleneck: bl, Height: h, Width: w}
			r := NewResNet(rng, in, 6, out, blocks, true, mode, opt)
			r.Act = tensor.Softplus
			if (bl > 0) != (r.InSkip == nil && r.Skips == nil) {
				t.Fatalf("bottleneck %d: skip connections %v %v", bl, r.InSkip, r.Skips)
			}
			if bl > 0 && r.BottleneckAfter != blocks/2 {
				t.Errorf("%d blocks: bottleneck after %d, want %d", blocks, r.BottleneckAfter, blocks/2)
			}
			x := tensor.New(1, h, w, in)
			rng.Normal(x.Data, 0, 1)
			f := func(x *tensor.Tensor) []float32 {
				p := tensor.GradFree()
				defer p.Close()
				return append([]float32(nil), r.Forward(p.Input(x)).Data...)
			}
			d, m := len(x.Data), h*w*out
			jac := mat.NewDense(m, d, nil)
			const eps = 1e-2
			for j := 0; j < d; j++ {
				xp, xm := x.Clone(), x.Clone()
				xp.Data[j] += eps
				xm.Data[j] -= eps
				yp, ym := f(xp), f(xm)
				for i := range yp {
					jac.Set(i, j, (float64(yp[i])-float64(ym[i]))/(2*eps))
				}
			}
			var svd mat.SVD
			if !svd.Factorize(jac, mat.SVDNone) {
				t.Fatal("SVD failed")
			}
			sv := svd.Values(nil)
			if bl > 0 {
				if sv[l] > 1e-3*sv[0] {
					t.Errorf("%d blocks, bottleneck %d: singular values %.3g, want those past the %dth ~0", blocks, bl, sv, l)
				}
			} else if sv[l] < 1e-2*sv[0] {
				t.Errorf("%d blocks, no bottleneck: singular values %.3g, want more than %d clearly non-zero", blocks, sv, l)
			}
		}
	}
}
