package bijector_test

import (
	"math"
	"testing"

	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TestActNormInit checks the data-dependent initialisation: on the first
// training batch the output has zero mean and unit variance per channel;
// later batches, evaluation mode and an actnorm whose buffer says it is
// initialised (as a checkpoint restores it) keep the parameters.
func TestActNormInit(t *testing.T) {
	rng := tensor.NewRNG(5)
	const c = 3
	x := tensor.Randn(rng, 16, 4, 4, c)
	for i := range x.Data {
		x.Data[i] = x.Data[i]*float32(1+i%c) + float32(3*(i%c)) // channel j: mean 3j, std j+1
	}
	mode := &nn.Mode{}
	a := bijector.NewActNorm(c, mode)
	z, _ := a.Forward(x)
	if a.IsInitialized() {
		t.Fatal("evaluation-mode Forward initialised the actnorm")
	}
	_ = z
	mode.Train = true
	z, ld := a.Forward(x)
	if !a.IsInitialized() {
		t.Fatal("training-mode Forward did not initialise the actnorm")
	}
	rows := len(z.Data) / c
	for j := 0; j < c; j++ {
		var s, sq float64
		for r := 0; r < rows; r++ {
			v := float64(z.Data[r*c+j])
			s += v
			sq += v * v
		}
		mean := s / float64(rows)
		v := sq/float64(rows) - mean*mean
		if math.Abs(mean) > 1e-4 || math.Abs(v-1) > 1e-3 {
			t.Errorf("channel %d after initialisation: mean %g variance %g, want 0 and 1", j, mean, v)
		}
	}
	if ld.Data[0] >= 0 {
		t.Errorf("log-det %g of a shrinking actnorm, want < 0", ld.Data[0])
	}
	bias := append([]float32(nil), a.Bias.Data...)
	x2 := tensor.Randn(rng, 16, 4, 4, c)
	a.Forward(x2)
	for j := range bias {
		if a.Bias.Data[j] != bias[j] {
			t.Fatal("a second training batch initialised the actnorm again")
		}
	}
	// A fresh actnorm with the buffer set (restored from a checkpoint) is
	// not initialised by training.
	b := bijector.NewActNorm(c, mode)
	b.Initialized.Data[0] = 1
	b.Forward(x)
	for j := 0; j < c; j++ {
		if b.Bias.Data[j] != 0 || b.LogScale.Data[j] != 0 {
			t.Fatal("an actnorm marked initialised was initialised again")
		}
	}
}

// TestActNormGroup checks that replicas sharing an actnorm's parameters
// initialise it with the statistics of the whole batch.
func TestActNormGroup(t *testing.T) {
	rng := tensor.NewRNG(6)
	const c, k = 2, 2
	x := tensor.Randn(rng, 8, 2, 2, c)
	for i := range x.Data {
		x.Data[i] += float32(i / (len(x.Data) / 2)) // the halves differ
	}
	whole := bijector.NewActNorm(c, &nn.Mode{Train: true})
	whole.Forward(x)
	g := tensor.NewGroup(k)
	shared := bijector.NewActNorm(c, &nn.Mode{})
	done := make(chan struct{})
	half := len(x.Data) / k
	for r := 0; r < k; r++ {
		rep := bijector.NewActNorm(c, &nn.Mode{Train: true, Group: g, Rank: r})
		if err := nn.Share(rep, shared); err != nil {
			t.Fatal(err)
		}
		part := tensor.FromData(x.Data[r*half:(r+1)*half], 4, 2, 2, c)
		go func() { rep.Forward(part); done <- struct{}{} }()
	}
	for r := 0; r < k; r++ {
		<-done
	}
	for j := 0; j < c; j++ {
		if d := math.Abs(float64(shared.Bias.Data[j] - whole.Bias.Data[j])); d > 1e-5 {
			t.Errorf("channel %d: replicas' bias %g, whole batch's %g", j, shared.Bias.Data[j], whole.Bias.Data[j])
		}
		if d := math.Abs(float64(shared.LogScale.Data[j] - whole.LogScale.Data[j])); d > 1e-5 {
			t.Errorf("channel %d: replicas' log-scale %g, whole batch's %g", j, shared.LogScale.Data[j], whole.LogScale.Data[j])
		}
	}
	if !shared.IsInitialized() {
		t.Error("replicas did not mark the shared actnorm initialised")
	}
}
