package train_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/train"
)

// TestNonFiniteSentinel trains a tiny model a few steps (saving a
// checkpoint), then poisons the second coupling with finite values that
// make its output overflow (scale 1e4 and a shift of 1 in the raw
// log-scale: exp(1e4·tanh 1) is +Inf in float32) and trains on: the error
// must wrap ErrNonFinite, name the step and the poisoned coupling by its
// checkpoint name path ("1.steps.1", the first layer whose output is not
// finite; the couplings before it are untouched), and the checkpoint on
// disk must be the one saved before, byte for byte.
func TestNonFiniteSentinel(t *testing.T) {
	tr, _ := fashion(t)
	dir := t.TempDir()
	m := tinyModel()
	cfg := train.Config{Epochs: 1, MaxSteps: 3, Batch: 16, LR: 1e-3, Seed: 3, CheckpointEvery: train.Off}
	if _, err := (&train.Run{Model: m, Config: cfg, Train: tr, Dir: dir}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(dir, "checkpoint", "latest", "model.safetensors")
	before, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	poisoned := 0
	for _, p := range nn.Tensors(m) {
		switch p.Name {
		case "1.steps.1.scale":
			p.T.Data[0] = 1e4
			poisoned++
		case "1.steps.1.st_net.out_conv.bias":
			p.T.Data[0] = 1
			poisoned++
		}
	}
	if poisoned != 2 {
		t.Fatalf("poisoned %d tensors, want 2 (names changed?)", poisoned)
	}
	cfg.MaxSteps = 6
	_, err = (&train.Run{Model: m, Config: cfg, Train: tr, Dir: dir}).Execute(context.Background())
	if !errors.Is(err, train.ErrNonFinite) {
		t.Fatalf("training a poisoned model: %v, want ErrNonFinite", err)
	}
	for _, want := range []string{"step 0:", "output of layer 1.steps.1 "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Log(err)
	after, err := os.ReadFile(ck)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the latest checkpoint changed (%v)", err)
	}
}

// TestNonFiniteSentinelHugeLR trains with a learning rate of 1e30: the
// first step's update makes the parameters huge and a later step's loss
// or gradient not finite. The error must name a layer of the model by a
// checkpoint name path (a prefix of some tensor's name) or say that the
// forward pass was finite.
func TestNonFiniteSentinelHugeLR(t *testing.T) {
	tr, _ := fashion(t)
	m := tinyModel()
	cfg := train.Config{Epochs: 1, Batch: 16, LR: 1e30, Seed: 3, ClipNorm: -1}
	_, err := (&train.Run{Model: m, Config: cfg, Train: tr, Dir: t.TempDir()}).Execute(context.Background())
	if !errors.Is(err, train.ErrNonFinite) {
		t.Fatalf("lr 1e30: %v, want ErrNonFinite", err)
	}
	t.Log(err)
	msg := err.Error()
	if i := strings.Index(msg, "of layer "); i >= 0 {
		name := strings.Fields(msg[i+len("of layer "):])[0]
		found := name == "base"
		for _, p := range nn.Tensors(m) {
			found = found || strings.HasPrefix(p.Name, name+".")
		}
		if !found {
			t.Errorf("the error names layer %q, which is no layer of the model", name)
		}
	} else if !strings.Contains(msg, "forward pass of the batch is finite") {
		t.Errorf("the error names no layer: %v", err)
	}
}

// TestNoNonFiniteCheckpoint poisons a parameter with NaN and trains with
// a checkpoint due before the first step: the save is refused with an
// error naming the parameter, and the checkpoint on disk is unchanged.
func TestNoNonFiniteCheckpoint(t *testing.T) {
	tr, _ := fashion(t)
	dir := t.TempDir()
	m := tinyModel()
	cfg := train.Config{Epochs: 1, MaxSteps: 2, Batch: 16, LR: 1e-3, Seed: 3, CheckpointEvery: train.Off}
	if _, err := (&train.Run{Model: m, Config: cfg, Train: tr, Dir: dir}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(dir, "checkpoint", "latest", "model.safetensors")
	before, err := os.ReadFile(ck)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range nn.Tensors(m) {
		if p.Name == "1.steps.2.scale" {
			p.T.Data[0] = float32(math.NaN())
		}
	}
	cfg.MaxSteps, cfg.CheckpointEvery = 4, train.Interval(time.Nanosecond)
	_, err = (&train.Run{Model: m, Config: cfg, Train: tr, Dir: dir}).Execute(context.Background())
	if !errors.Is(err, train.ErrNonFinite) || !strings.Contains(err.Error(), "1.steps.2.scale") {
		t.Errorf("saving a NaN model: %v", err)
	}
	if after, err := os.ReadFile(ck); err != nil || !bytes.Equal(before, after) {
		t.Errorf("the latest checkpoint changed (%v)", err)
	}
}
