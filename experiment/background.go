package experiment

import (
	"math/rand/v2"

	"github.com/flowood/flowood/model/datakind"
)

// perturbed is a training set of images whose pixels are replaced, each
// with probability mu, by a uniform random pixel value each time they
// are read (runfile.Data.BackgroundNoise): the inputs of Ren et al.'s
// background model. The replacement is drawn from the same generator as
// the dequantisation noise, so a resumed run (which restores that
// generator) perturbs as an uninterrupted one.
type perturbed struct {
	datakind.Examples
	mu float64
}

// Read implements datakind.Examples: the dequantised inputs, then each
// value replaced, with probability mu, by (k + ε)/256 with k uniform in
// 0..255 and ε uniform in [0, 1): a substituted pixel dequantised. With
// rng nil (midpoint evaluation) nothing is perturbed.
func (p perturbed) Read(dst []float32, idx []int, rng *rand.Rand) {
	p.Examples.Read(dst, idx, rng)
	if rng == nil {
		return
	}
	for i := range dst {
		if rng.Float64() < p.mu {
			dst[i] = float32((float64(rng.IntN(256)) + rng.Float64()) / 256) // as pixels.Dequantize
		}
	}
}
