package glow

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

func uniform(rng *tensor.RNG, shape ...int) *tensor.Tensor {
	u := tensor.New(shape...)
	rng.Uniform(u.Data, 0.01, 0.99)
	return u
}

// TestModelContract runs the bijector contract on whole small Glows
// (8x8 images): the reference's configuration and every option at once.
func TestModelContract(t *testing.T) {
	for _, cfg := range []Config{
		{Height: 8, Width: 8, Scales: 2, Steps: 1, Hidden: 3, Layers: 1},
		{Height: 8, Width: 8, Scales: 2, Steps: 2, Hidden: 3, Layers: 1, LU: "on", SplitPrior: "on", Coupling: "sigmoid"},
		{Height: 8, Width: 8, Scales: 2, Steps: 1, Hidden: 3, Layers: 2, Coupling: "additive", SplitPrior: "on"},
	} {
		t.Run(cfg.Coupling+"-lu"+cfg.LU+"-prior"+cfg.SplitPrior, func(t *testing.T) {
			rng := tensor.NewRNG(2)
			m := New(cfg, rng)
			u := uniform(rng, 2, 8, 8, 1)
			m.SetTraining(true)
			m.LogProb(uniform(rng, 16, 8, 8, 1)) // initialises the actnorms
			m.SetTraining(false)
			if !m.Initialized() {
				t.Fatal("actnorms not initialised by a training batch")
			}
			flowtest.Perturb(m, rng, 0.05)
			flowtest.CheckBijector(t, m.Flow, u, flowtest.Options{GradSamples: 1, Step: 1e-2})
		})
	}
}

// TestActNormCheckpoint checks that the actnorms' initialisation is
// restored from a checkpoint and not redone on the next training batch.
func TestActNormCheckpoint(t *testing.T) {
	cfg, _ := Preset("tiny")
	rng := tensor.NewRNG(3)
	m := New(cfg, rng)
	m.SetTraining(true)
	m.LogProb(uniform(rng, 8, 28, 28, 1))
	if !m.Initialized() {
		t.Fatal("not initialised after a training batch")
	}
	dir := filepath.Join(t.TempDir(), "ck")
	if err := checkpoint.Save(dir, m, checkpoint.State{}); err != nil {
		t.Fatal(err)
	}
	want := map[string][]float32{}
	for _, nt := range nn.Tensors(m) {
		want[nt.Name] = slices.Clone(nt.T.Data)
	}
	// a fresh model (other parameters) loaded from the checkpoint
	l := New(cfg, tensor.NewRNG(99))
	if l.Initialized() {
		t.Fatal("a new model says it is initialised")
	}
	if _, err := checkpoint.Load(dir, l); err != nil {
		t.Fatal(err)
	}
	if !l.Initialized() {
		t.Fatal("the initialised state was not restored from the checkpoint")
	}
	l.SetTraining(true)
	l.LogProb(uniform(tensor.NewRNG(4), 8, 28, 28, 1)) // other data
	for _, nt := range nn.Tensors(l) {
		if !slices.Equal(nt.T.Data, want[nt.Name]) {
			t.Errorf("%s changed by a training batch after loading: actnorm initialised again", nt.Name)
		}
	}
}

// TestActNormInitOutput checks that after a model's first training batch
// the output of its first actnorm has zero mean and unit variance per
// channel on that batch.
func TestActNormInitOutput(t *testing.T) {
	cfg, _ := Preset("tiny")
	rng := tensor.NewRNG(5)
	m := New(cfg, rng)
	u := uniform(rng, 16, 28, 28, 1)
	m.SetTraining(true)
	m.LogProb(u)
	// the input of the first actnorm: logit, then squeeze
	p := tensor.GradFree()
	defer p.Close()
	x := p.Input(u)
	pre, _ := logitSqueeze(m, x)
	z, _ := m.ActNorms[0].Forward(pre)
	c := z.Dim(-1)
	rows := len(z.Data) / c
	for j := 0; j < c; j++ {
		var s, sq float64
		for r := 0; r < rows; r++ {
			v := float64(z.Data[r*c+j])
			s += v
			sq += v * v
		}
		mean := s / float64(rows)
		if v := sq/float64(rows) - mean*mean; math.Abs(mean) > 1e-3 || math.Abs(v-1) > 1e-2 {
			t.Errorf("channel %d: mean %g variance %g after initialisation, want 0 and 1", j, mean, v)
		}
	}
}

// TestSampleInverts checks that sampling gives finite images and that
// the latent of a sample inverts back to it (nothing resampled), also with
// the learned split prior.
func TestSampleInverts(t *testing.T) {
	cfg, _ := Preset("tiny")
	cfg.SplitPrior = "on"
	rng := tensor.NewRNG(6)
	m := New(cfg, rng)
	m.SetTraining(true)
	m.LogProb(uniform(rng, 8, 28, 28, 1))
	m.SetTraining(false)
	flowtest.Perturb(m, rng, 0.02)
	p := tensor.GradFree()
	defer p.Close()
	z := p.Input(tensor.Randn(rng, 4, 28*28))
	x, _ := m.Inverse(z)
	if !x.AllFinite() {
		t.Fatal("non-finite sample")
	}
	z2, _ := m.Forward(x)
	var worst float64
	for i := range z.Data {
		worst = math.Max(worst, math.Abs(float64(z.Data[i]-z2.Data[i])))
	}
	if worst > 1e-2 {
		t.Errorf("Forward(Inverse(z)) differs from z by %g", worst)
	}
}

// logitSqueeze returns the input of the model's first actnorm.
func logitSqueeze(m *Model, x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	steps := m.Flow.Bijector.(flow.Chain)
	y, _ := steps[0].Forward(x)
	ms := steps[1].(*bijector.MultiScale)
	return ms.Steps.(flow.Chain)[0].Forward(y)
}
