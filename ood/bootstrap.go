package ood

import (
	"math"
	"math/rand/v2"
	"slices"
)

// Bootstrap returns a 95% percentile bootstrap confidence interval
// [lo, hi] for metric(in, out). Each of the n replicates resamples in and
// out independently with replacement, keeping their sizes (a stratified
// bootstrap), and evaluates metric on the resample; lo and hi are the 2.5th
// and 97.5th percentiles of the replicate values, linearly interpolated
// between order statistics (NumPy's default percentile rule). Replicates
// for which metric returns NaN are discarded. Bootstrap returns NaN, NaN if
// n < 1, if either set is empty or if every replicate is NaN. rng supplies
// all randomness, so a seeded rng gives a reproducible interval; it must
// not be nil.
func Bootstrap(in, out []float64, metric func(in, out []float64) float64, n int, rng *rand.Rand) (lo, hi float64) {
	if n < 1 || len(in) == 0 || len(out) == 0 {
		return math.NaN(), math.NaN()
	}
	bi := make([]float64, len(in))
	bo := make([]float64, len(out))
	vals := make([]float64, 0, n)
	for range n {
		for i := range bi {
			bi[i] = in[rng.IntN(len(in))]
		}
		for i := range bo {
			bo[i] = out[rng.IntN(len(out))]
		}
		if v := metric(bi, bo); !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return math.NaN(), math.NaN()
	}
	slices.Sort(vals)
	return percentile(vals, 0.025), percentile(vals, 0.975)
}

// percentile returns the q-quantile (0 <= q <= 1) of the ascending sorted,
// non-empty slice s, interpolating linearly between the order statistics
// at positions floor(q*(len(s)-1)) and ceil(q*(len(s)-1)).
func percentile(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	i := int(math.Floor(pos))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	f := pos - float64(i)
	if f == 0 {
		return s[i]
	}
	return s[i] + f*(s[i+1]-s[i])
}
