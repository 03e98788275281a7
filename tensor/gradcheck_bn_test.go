package tensor

// Forward values and backward passes of every operation, checked against
// independent float64 reference implementations written here with naive
// loops. For each case, checkGrad
//
//   - compares the engine's output with the reference forward,
//   - builds L = sum(r * op(inputs)) for a fixed random r (the r-weighted sum
//     is a node defined in this file, so no engine operation is involved in
//     the loss itself), runs Backward, and compares the gradient of every
//     input that requires gradients with central finite differences of the
//     float64 reference (step 1e-4, so the reference gradient is accurate to
//     ~1e-8) on the max-norm,
//   - pre-seeds the inputs' Grad with known values, so a backward pass that
//     overwrites Grad instead of accumulating into it fails,
//   - checks that the inputs were not modified and that constants received
//     no gradient,
//   - reruns the engine in a gradient-free pass and checks that nothing is recorded and
//     the values are identical.

import (
	"fmt"
	"math"
	"testing"
)

// refBatchNorm normalises x per channel with two-pass batch statistics
// (train) or with the given mean and variance (evaluation).
func refBatchNorm(x, gamma, beta arr, mean, variance []float64, eps float64) arr {
	c := x.shape[len(x.shape)-1]
	rows := len(x.data) / c
	if mean == nil {
		mean, variance = refMoments(x)
	}
	y := newArr(x.shape...)
	for r := 0; r < rows; r++ {
		for j := 0; j < c; j++ {
			i := r*c + j
			y.data[i] = gamma.data[j]*(x.data[i]-mean[j])/math.Sqrt(variance[j]+eps) + beta.data[j]
		}
	}
	return y
}

// refMoments returns the per-channel mean and biased variance of x, two
// passes.
func refMoments(x arr) (mean, variance []float64) {
	c := x.shape[len(x.shape)-1]
	rows := len(x.data) / c
	mean, variance = make([]float64, c), make([]float64, c)
	for r := 0; r < rows; r++ {
		for j := 0; j < c; j++ {
			mean[j] += x.data[r*c+j]
		}
	}
	for j := range mean {
		mean[j] /= float64(rows)
	}
	for r := 0; r < rows; r++ {
		for j := 0; j < c; j++ {
			d := x.data[r*c+j] - mean[j]
			variance[j] += d * d
		}
	}
	for j := range variance {
		variance[j] /= float64(rows)
	}
	return mean, variance
}

func TestBatchNormTrain(t *testing.T) {
	rng := gcRNG(10)
	cases := []struct {
		shape     []int
		mean, std float64
		eps       float64
	}{
		{[]int{4, 3}, 0, 1, 1e-5},
		{[]int{2, 1}, 0, 1, 1e-5}, // two values per channel
		{[]int{3, 4, 5, 2}, 0.5, 2, 1e-5},
		{[]int{2, 3, 3, 5}, -1, 0.3, 1e-3},
		{[]int{2, 5, 7, 3}, 3, 0.5, 1e-5}, // mean offset from zero
		{[]int{150, 4}, 0, 1, 1e-5},
		// |mean| >> std: one-pass statistics accumulated in float32 were
		// off by 3.6e-3 here; the float32 x*a+b of the output costs ~1e-5
		{[]int{64, 2}, 10, 0.1, 1e-5},
		{[]int{4, 4, 4, 2}, -100, 1, 1e-5},
	}
	for _, c := range cases {
		for _, which := range []string{"all", "x", "params"} {
			if which != "all" && c.shape[0] != 3 {
				continue
			}
			ch := c.shape[len(c.shape)-1]
			x := normal(rng, c.mean, c.std, c.shape...)
			gamma := uniform(rng, 0.5, 1.5, ch)
			beta := normal(rng, 0, 1, ch)
			x.SetRequiresGrad(which != "params")
			gamma.SetRequiresGrad(which != "x")
			beta.SetRequiresGrad(which != "x")
			eps := c.eps
			stats := &BatchNormStats{Mean: make([]float32, ch), Var: make([]float32, ch), Momentum: 0.1, Eps: eps}
			checkGradOpts(t, fmt.Sprintf("BatchNorm train x%v mean %v std %v/%s", c.shape, c.mean, c.std, which),
				[]*Tensor{x, gamma, beta},
				func(in []*Tensor) *Tensor { return BatchNorm(in[0], in[1], in[2], stats, true) },
				func(in []arr) arr { return refBatchNorm(in[0], in[1], in[2], nil, nil, eps) },
				gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-5})
		}
	}
}

func TestBatchNormRunningStats(t *testing.T) {
	rng := gcRNG(11)
	const ch, mom = 3, 0.2
	x := param(normal(rng, 1.5, 2, 4, 3, 5, ch))
	gamma, beta := param(uniform(rng, 0.5, 1.5, ch)), param(normal(rng, 0, 1, ch))
	stats := &BatchNormStats{Mean: []float32{0.1, -0.2, 0.3}, Var: []float32{1, 0.5, 2}, Momentum: mom, Eps: 1e-5}
	oldMean := append([]float32(nil), stats.Mean...)
	oldVar := append([]float32(nil), stats.Var...)
	BatchNorm(x, gamma, beta, stats, true)
	mean, variance := refMoments(toArr(x))
	rows := float64(x.Numel() / ch)
	wantMean, wantVar := make([]float64, ch), make([]float64, ch)
	for j := 0; j < ch; j++ {
		wantMean[j] = (1-mom)*float64(oldMean[j]) + mom*mean[j]
		wantVar[j] = (1-mom)*float64(oldVar[j]) + mom*variance[j]*rows/(rows-1) // unbiased
	}
	checkClose(t, "running mean", stats.Mean, wantMean, 1e-5, 1e-6)
	checkClose(t, "running variance", stats.Var, wantVar, 1e-5, 1e-6)

	// Evaluation mode leaves the statistics alone.
	before := append(append([]float32(nil), stats.Mean...), stats.Var...)
	BatchNorm(x, gamma, beta, stats, false)
	if after := append(append([]float32(nil), stats.Mean...), stats.Var...); !bitsEqual(before, after) {
		t.Errorf("evaluation mode changed the running statistics: %v -> %v", before, after)
	}

	// Nil Mean/Var (frozen statistics): training mode normalises with the
	// batch statistics and updates nothing.
	frozen := &BatchNormStats{Momentum: mom, Eps: 1e-5}
	y := BatchNorm(x.Clone(), gamma.Clone(), beta.Clone(), frozen, true)
	checkClose(t, "BatchNorm train with frozen stats", y.Data,
		refBatchNorm(toArr(x), toArr(gamma), toArr(beta), nil, nil, 1e-5).data, 1e-5, 1e-5)
	if frozen.Mean != nil || frozen.Var != nil {
		t.Errorf("frozen statistics were allocated")
	}
}

func TestBatchNormEval(t *testing.T) {
	rng := gcRNG(12)
	for _, shape := range [][]int{{4, 3}, {3, 4, 5, 2}, {1, 2, 3, 4}} {
		for _, which := range []string{"all", "x", "params"} {
			ch := shape[len(shape)-1]
			x := normal(rng, 0.5, 1.5, shape...)
			gamma := uniform(rng, 0.5, 1.5, ch)
			beta := normal(rng, 0, 1, ch)
			x.SetRequiresGrad(which != "params")
			gamma.SetRequiresGrad(which != "x")
			beta.SetRequiresGrad(which != "x")
			rm, rv := normal(rng, 0, 1, ch), uniform(rng, 0.2, 3, ch)
			stats := &BatchNormStats{Mean: rm.Data, Var: rv.Data, Momentum: 0.1, Eps: 1e-5}
			mean, variance := toArr(rm).data, toArr(rv).data
			checkGradOpts(t, fmt.Sprintf("BatchNorm eval x%v/%s", shape, which), []*Tensor{x, gamma, beta},
				func(in []*Tensor) *Tensor { return BatchNorm(in[0], in[1], in[2], stats, false) },
				func(in []arr) arr { return refBatchNorm(in[0], in[1], in[2], mean, variance, 1e-5) },
				gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-6})

			// Each example is transformed independently of the batch.
			if shape[0] < 2 {
				continue
			}
			all := BatchNorm(x, gamma, beta, stats, false)
			d := x.Numel() / shape[0]
			one := BatchNorm(FromData(x.Data[d:2*d:2*d], append([]int{1}, shape[1:]...)...), gamma, beta, stats, false)
			if !bitsEqual(one.Data, all.Data[d:2*d]) {
				t.Errorf("BatchNorm eval %v: example 1 depends on the rest of the batch", shape)
			}
		}
	}
}
