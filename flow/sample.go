package flow

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/tensor"
)

// Sample draws n examples from f at the given temperature: the whole
// latent z, shape [n] followed by latent (the per-example shape Forward
// returns: [D] for RealNVP's flat multi-scale latent), is drawn at once
// from N(0, temperature² I) with rng, in the order of its values, and
// mapped to data by x = Inverse(z) in a gradient-free pass. Every part of
// a multi-scale latent, the factored-out ones included, is drawn here
// once; Inverse draws nothing, so the same rng state gives the same
// samples, and Forward(Sample) returns the z drawn up to rounding.
//
// Batch norms must be in evaluation mode (running statistics; the
// model's SetTraining(false)): in training mode each sample would depend
// on the others of the batch. The result is not part of any pass and
// holds whatever Inverse gives: a caller that wants images clips it to
// the pixel range. Sample panics if n < 1 or the temperature is negative
// or not finite.
func (f Flow) Sample(rng *tensor.RNG, n int, latent []int, temperature float64) *tensor.Tensor {
	if n < 1 || temperature < 0 || math.IsNaN(temperature) || math.IsInf(temperature, 0) {
		panic(fmt.Sprintf("flow: Sample of %d examples at temperature %v", n, temperature))
	}
	shape := append([]int{n}, latent...)
	zData := make([]float32, tensor.Numel(shape))
	rng.Normal(zData, 0, temperature)
	p := tensor.GradFree()
	defer p.Close()
	x, _ := f.Inverse(p.FromData(zData, shape...))
	return tensor.FromData(append([]float32(nil), x.Data...), x.Shape...)
}
