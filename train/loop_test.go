package train_test

import (
	"context"
	"math"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

func tinyModel() *realnvp.Model {
	cfg, _ := realnvp.Preset("tiny")
	return realnvp.New(cfg, tensor.NewRNG(1))
}

func fashion(t *testing.T) (*data.Images, *data.Images) {
	tr, err := data.LoadEmbedded("fashionmnist", "train")
	if err != nil {
		t.Fatal(err)
	}
	te, err := data.LoadEmbedded("fashionmnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	return tr.Head(96), te.Head(16)
}

// TestResumeIsExact trains 8 steps straight and 5+3 steps with a resume
// in between; the weights must be bit-identical. It does so with one pass
// over each batch and with data-parallel replicas (train.Parallel), whose
// steps are as deterministic.
func TestResumeIsExact(t *testing.T) {
	tr, te := fashion(t)
	for _, parallel := range []bool{false, true} {
		cfg := train.Config{Epochs: 2, Batch: 16, LR: 1e-3, Seed: 3, LogEvery: 1}
		run := func(m *realnvp.Model, dir string, resume bool) (train.Result, error) {
			r := &train.Run{Model: m, Config: cfg, Train: tr, Test: te, Dir: dir, Resume: resume}
			if parallel {
				r.Parallel = newParallel(t, m, 2)
			}
			return r.Execute(context.Background())
		}
		straight := tinyModel()
		cfg.MaxSteps = 8 // crosses the epoch boundary (6 steps per epoch)
		if _, err := run(straight, t.TempDir(), false); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		first := tinyModel()
		cfg.MaxSteps = 5
		if _, err := run(first, dir, false); err != nil {
			t.Fatal(err)
		}
		resumed := tinyModel() // fresh weights, overwritten by the checkpoint
		cfg.MaxSteps = 8
		res, err := run(resumed, dir, true)
		if err != nil {
			t.Fatal(err)
		}
		if res.Steps != 8 {
			t.Fatalf("parallel %v: resumed run ended at step %d, want 8", parallel, res.Steps)
		}
		a, b := nn.Tensors(straight), nn.Tensors(resumed)
		for i := range a {
			for j := range a[i].T.Data {
				if a[i].T.Data[j] != b[i].T.Data[j] {
					t.Fatalf("parallel %v: %s[%d]: straight %v, resumed %v", parallel, a[i].Name, j, a[i].T.Data[j], b[i].T.Data[j])
				}
			}
		}
		if parallel && math.IsNaN(res.TestBPD) {
			t.Error("data-parallel run: test bits/dim is NaN")
		}
	}
}

// TestTrainingLowersLoss checks that a few dozen steps reduce test
// bits/dim from the untrained model's value.
func TestTrainingLowersLoss(t *testing.T) {
	tr, te := fashion(t)
	m := tinyModel()
	before, err := (&train.Run{Model: m, Config: train.Config{Epochs: 1, Batch: 16, MaxSteps: 1, LR: 1e-9}, Train: tr, Test: te, Dir: t.TempDir()}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after, err := (&train.Run{Model: m, Config: train.Config{Epochs: 6, Batch: 16, LR: 3e-3}, Train: tr, Test: te, Dir: t.TempDir()}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !(after.TestBPD < before.TestBPD-0.5) || math.IsNaN(after.TestBPD) {
		t.Errorf("test bits/dim %.3f after training, %.3f before: want a drop of at least 0.5", after.TestBPD, before.TestBPD)
	}
}

func TestConfigValidate(t *testing.T) {
	for i, c := range []train.Config{
		{Batch: 1}, {LR: -1}, {Optimizer: "sgd9"}, {WeightDecay: -1}, {MaxSteps: -2},
	} {
		if err := c.WithDefaults().Validate(); err == nil {
			t.Errorf("%d: %+v validated", i, c)
		}
	}
}
