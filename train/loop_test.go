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

// TestResumeIsExact trains 4 steps straight and 2+2 steps with a resume
// in between; the weights must be bit-identical.
func TestResumeIsExact(t *testing.T) {
	tr, te := fashion(t)
	cfg := train.Config{Epochs: 2, Batch: 16, LR: 1e-3, Seed: 3, LogEvery: 1}
	straight := tinyModel()
	cfg.MaxSteps = 8 // crosses the epoch boundary (6 steps per epoch)
	if _, err := (&train.Run{Model: straight, Config: cfg, Train: tr, Test: te, Dir: t.TempDir()}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	first := tinyModel()
	cfg.MaxSteps = 5
	if _, err := (&train.Run{Model: first, Config: cfg, Train: tr, Test: te, Dir: dir}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	resumed := tinyModel() // fresh weights, overwritten by the checkpoint
	cfg.MaxSteps = 8
	res, err := (&train.Run{Model: resumed, Config: cfg, Train: tr, Test: te, Dir: dir, Resume: true}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 8 {
		t.Fatalf("resumed run ended at step %d, want 8", res.Steps)
	}
	a, b := nn.Tensors(straight), nn.Tensors(resumed)
	for i := range a {
		for j := range a[i].T.Data {
			if a[i].T.Data[j] != b[i].T.Data[j] {
				t.Fatalf("%s[%d]: straight %v, resumed %v", a[i].Name, j, a[i].T.Data[j], b[i].T.Data[j])
			}
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
