package tensor

import "math/rand/v2"

// RNG is a seedable, serialisable random source (PCG) for initialisation,
// dequantisation noise and sampling. Its state is saved in checkpoints with
// MarshalBinary so resumed training draws the same numbers.
type RNG struct {
	*rand.Rand
	src *rand.PCG
}

// NewRNG returns a generator seeded with seed.
func NewRNG(seed uint64) *RNG {
	src := rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)
	return &RNG{Rand: rand.New(src), src: src}
}

// MarshalBinary returns the generator state.
func (r *RNG) MarshalBinary() ([]byte, error) { return r.src.MarshalBinary() }

// UnmarshalBinary restores a state from MarshalBinary.
func (r *RNG) UnmarshalBinary(b []byte) error { return r.src.UnmarshalBinary(b) }

// Normal fills dst with independent N(mean, std^2) draws.
func (r *RNG) Normal(dst []float32, mean, std float64) {
	for i := range dst {
		dst[i] = float32(mean + std*r.NormFloat64())
	}
}

// Uniform fills dst with independent U[lo, hi) draws.
func (r *RNG) Uniform(dst []float32, lo, hi float64) {
	for i := range dst {
		dst[i] = float32(lo + (hi-lo)*r.Float64())
	}
}

// Randn returns a tensor of the given shape with N(0, 1) entries.
func Randn(r *RNG, shape ...int) *Tensor {
	t := New(shape...)
	r.Normal(t.Data, 0, 1)
	return t
}
