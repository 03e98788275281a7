package nn

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/tensor"
)

// WeightNorm returns the weight-normalised kernel w = g ⊙ v/‖v‖ of
// Salimans & Kingma (2016): for each output channel o (the last
// dimension of v), w[..., o] = g[o]·v[..., o]/‖v[..., o]‖, the norm taken
// over all other dimensions. It is torch.nn.utils.weight_norm with dim 0
// for PyTorch's [Cout, Cin, KH, KW] weights (weight_v is v permuted,
// weight_g is g shaped [Cout, 1, 1, 1]). Gradients reach v and g:
//
//	∂L/∂g[o] = (∂L/∂w[..., o] · v[..., o]) / ‖v[..., o]‖
//	∂L/∂v[..., o] = g[o]/‖v[..., o]‖ · (∂L/∂w - v̂ (v̂ · ∂L/∂w))[..., o],  v̂ = v/‖v‖
//
// The norms are accumulated in float64. A column of v that is all zero
// gives NaN weights, as in PyTorch. It panics unless g has shape
// [v.Dim(-1)].
func WeightNorm(v, g *tensor.Tensor) *tensor.Tensor {
	// w = v ⊙ s per channel with s = g/‖v‖: the product is the engine's
	// MulChannel (whose output buffer it recycles); only the small
	// vector s has its own backward pass here.
	return tensor.MulChannel(v, weightNormScale(v, g))
}

// weightNormScale returns s = g/‖v‖ per output channel. Its backward
// pass gives g the gradient ds/‖v‖ and v the norm's share,
// -ds·g/‖v‖³ · v; MulChannel adds the direct share ∂L/∂w ⊙ s.
func weightNormScale(v, g *tensor.Tensor) *tensor.Tensor {
	c := v.Dim(-1)
	if len(g.Shape) != 1 || g.Shape[0] != c {
		panic(fmt.Sprintf("nn: WeightNorm of %v with gain %v", v.Shape, g.Shape))
	}
	rows := len(v.Data) / c
	sq := make([]float64, c)
	for r := 0; r < rows; r++ {
		for j, x := range v.Data[r*c : (r+1)*c] {
			sq[j] += float64(x) * float64(x)
		}
	}
	norm := make([]float64, c)
	s := make([]float32, c)
	for j := range s {
		norm[j] = math.Sqrt(sq[j])
		s[j] = float32(float64(g.Data[j]) / norm[j])
	}
	return tensor.Custom([]int{c}, s, []*tensor.Tensor{v, g}, func(ds []float32) {
		if g.RequiresGrad() {
			dg := make([]float32, c)
			for j := range dg {
				dg[j] = float32(float64(ds[j]) / norm[j])
			}
			tensor.AccumGrad(g, dg)
		}
		if v.RequiresGrad() {
			k := make([]float32, c)
			for j := range k {
				k[j] = float32(-float64(ds[j]) * float64(g.Data[j]) / (norm[j] * norm[j] * norm[j]))
			}
			dv := make([]float32, len(v.Data))
			for r := 0; r < rows; r++ {
				row, out := v.Data[r*c:(r+1)*c], dv[r*c:(r+1)*c]
				for j, x := range row {
					out[j] = k[j] * x
				}
			}
			tensor.AccumGrad(v, dv)
		}
	})
}
