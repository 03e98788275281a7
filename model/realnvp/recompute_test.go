package realnvp

import (
	"math"
	"testing"

	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TestRecomputeMatchesStored checks that recovering activations by
// inversion in the backward pass gives the same loss, gradients and
// batch-norm running statistics as storing them, in training mode.
func TestRecomputeMatchesStored(t *testing.T) {
	run := func(recompute string) (float32, []nn.Named) {
		cfg := Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Recompute: recompute}
		rng := tensor.NewRNG(5)
		m := New(cfg, rng)
		flowtest.Perturb(m, rng, 0.1)
		u := tensor.New(6, 8, 8, 1)
		rng.Uniform(u.Data, 0, 1)
		m.SetTraining(true)
		loss := tensor.Scale(tensor.Mean(m.LogProb(u)), -1)
		v := loss.Data[0]
		tensor.Backward(loss)
		return v, nn.Tensors(m)
	}
	lOn, on := run("on")
	lOff, off := run("off")
	// The forward pass of recomputation runs without gradient recording,
	// where the st-networks accumulate their skip connections in place
	// (tensor.AddConv2D) and so round in another order: the losses agree
	// to float32 rounding, not bit for bit.
	if d := math.Abs(float64(lOn - lOff)); d > 1e-6*math.Abs(float64(lOff)) {
		t.Errorf("loss %v with recomputation, %v without", lOn, lOff)
	}
	for i := range on {
		a, b := on[i], off[i]
		if a.Name != b.Name {
			t.Fatalf("tensor %d named %s and %s", i, a.Name, b.Name)
		}
		ref := b.T.Data
		got := a.T.Data
		if a.Trainable {
			ref, got = b.T.Grad, a.T.Grad
		}
		if (ref == nil) != (got == nil) {
			t.Errorf("%s: gradient present %v with recomputation, %v without", a.Name, got != nil, ref != nil)
			continue
		}
		var maxRef, maxDiff float64
		for j := range ref {
			maxRef = math.Max(maxRef, math.Abs(float64(ref[j])))
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[j]-ref[j])))
		}
		if maxDiff > 1e-4*math.Max(1, maxRef) {
			t.Errorf("%s: max difference %g (scale %g) between recomputed and stored", a.Name, maxDiff, maxRef)
		}
	}
}
