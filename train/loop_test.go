package train_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// TestConfigJSON checks that a training configuration written before
// loss and clip_per existed keeps its objective (bits per dimension, one
// clipping norm), and that the defaults are the reference code's.
func TestConfigJSON(t *testing.T) {
	var old train.Config
	if err := json.Unmarshal([]byte(`{"epochs":6,"batch":64,"lr":0.001,"weight_decay":5e-05,"clip_norm":100}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.Loss != "bpd" || old.ClipPer != "all" || old.Epochs != 6 {
		t.Errorf("old JSON decoded as %+v", old)
	}
	def := train.Config{}.WithDefaults()
	if def.Loss != "nats" || def.ClipPer != "group" {
		t.Errorf("defaults loss %q clip_per %q, want nats group", def.Loss, def.ClipPer)
	}
	b, _ := json.Marshal(def)
	var back train.Config
	if err := json.Unmarshal(b, &back); err != nil || back != def {
		t.Errorf("%s decoded as %+v (%v)", b, back, err)
	}
	for _, bad := range []train.Config{{Loss: "bits"}, {ClipPer: "layer"}} {
		if bad.WithDefaults().Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// gradNorm trains m for cfg.MaxSteps steps (default 1) and returns the
// first logged gradient norm.
func gradNorm(t *testing.T, m *realnvp.Model, cfg train.Config) float64 {
	t.Helper()
	tr, _ := fashion(t)
	dir := t.TempDir()
	cfg.MaxSteps, cfg.Batch, cfg.LogEvery = max(cfg.MaxSteps, 1), 16, 1
	if _, err := (&train.Run{Model: m, Config: cfg, Train: tr, Dir: dir}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "train-log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("train-log.csv: %d rows, %v", len(rows), err)
	}
	v, err := strconv.ParseFloat(rows[1][6], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLossUnits checks that the "nats" objective's gradient is D ln 2
// times the "bpd" objective's (D = 784).
func TestLossUnits(t *testing.T) {
	nats := gradNorm(t, tinyModel(), train.Config{Loss: "nats"})
	bpd := gradNorm(t, tinyModel(), train.Config{Loss: "bpd"})
	if want := 784 * math.Ln2; math.Abs(nats/bpd-want) > 1e-3*want {
		t.Errorf("gradient norm %v in nats, %v in bits/dim: ratio %v, want %v", nats, bpd, nats/bpd, want)
	}
}

// zeroAtStart reports whether the tiny preset's parameter of this name is
// initialised to zero (batch-norm shifts).
func zeroAtStart(name string) bool {
	cfg, _ := realnvp.Preset("tiny")
	for _, nt := range nn.Tensors(realnvp.New(cfg, tensor.NewRNG(1))) {
		if nt.Name == name {
			for _, v := range nt.T.Data {
				if v != 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}

// TestWeightDecayOnGains trains one step of AdamW (whose decay shrinks
// the parameters it applies to whatever their gradient) with weight decay
// and without: the default RealNVP decays only its weight-norm gains and
// coupling scales, so every other parameter ends bit-identical; with
// realnvp.Config.Decay "all" they all change.
func TestWeightDecayOnGains(t *testing.T) {
	for _, decay := range []string{"gains", "all"} {
		step := func(wd float64) *realnvp.Model {
			cfg, _ := realnvp.Preset("tiny")
			cfg.Decay = decay
			m := realnvp.New(cfg, tensor.NewRNG(1))
			gradNorm(t, m, train.Config{Optimizer: "adamw", WeightDecay: wd, LR: 1e-2})
			return m
		}
		with, without := step(10), step(0)
		a, b := nn.Tensors(with), nn.Tensors(without)
		for i := range a {
			if !a[i].Trainable {
				continue
			}
			same := true
			for j := range a[i].T.Data {
				same = same && a[i].T.Data[j] == b[i].T.Data[j]
			}
			decayed := decay == "all" || strings.HasSuffix(a[i].Name, "weight_g") || strings.HasSuffix(a[i].Name, "scale")
			if decayed && zeroAtStart(a[i].Name) {
				continue // decay of a zero is zero
			}
			if same == decayed {
				t.Errorf("decay %s: %s changed %v by weight decay, want %v", decay, a[i].Name, !same, decayed)
			}
		}
	}
}
