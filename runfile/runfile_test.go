package runfile

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/internal/jsonfloat"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/realnvp"
)

func write(t *testing.T, dir, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeRead(t *testing.T) {
	e, _ := model.Lookup("realnvp")
	shape := datakind.ImageShape(32, 32, 3)
	cfg, _, err := e.Preset("tiny", shape, "cifar10")
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Model: "realnvp", Preset: "tiny", ModelConfig: cfg, Objective: Objective{Name: "likelihood"},
		Data: Data{Name: "cifar10", Shape: shape, TrainLimit: 100, Subset: SubsetRandom, SubsetSeed: 3}}
	b, err := Encode(spec, map[string]int{"epochs": 2})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, string(b))
	got, tr, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Model != spec.Model || got.Preset != spec.Preset || got.Objective != spec.Objective || got.Data != spec.Data ||
		got.ModelConfig.(realnvp.Config) != cfg.(realnvp.Config) {
		t.Errorf("read %+v, wrote %+v", got, spec)
	}
	var train map[string]int
	if err := json.Unmarshal(tr, &train); err != nil || train["epochs"] != 2 {
		t.Errorf("train object %s", tr)
	}
	// the layout the issue asks for: version, model, model_config, data with shape
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	var d map[string]any
	json.Unmarshal(raw["data"], &d)
	if string(raw["version"]) != "2" || string(raw["model"]) != `"realnvp"` || raw["model_config"] == nil ||
		d["kind"] != "image" || d["height"] != 32.0 || d["channels"] != 3.0 {
		t.Errorf("config.json layout:\n%s", b)
	}
	m, err := got.NewModel(1)
	if err != nil || m == nil {
		t.Errorf("NewModel: %v", err)
	}
}

// TestReadVersion1 reads a config.json as flowood wrote it before the
// model registry.
func TestReadVersion1(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, `{
  "version": 1,
  "model": "realnvp",
  "preset": "tiny",
  "realnvp": {"height": 28, "width": 28, "channels": 1, "scales": 2, "blocks": 1, "mid": 4, "constraint": 0.9, "recompute": "off", "activation": "relu"},
  "data": {"name": "fashionmnist", "embedded": true, "train_limit": 64},
  "train": {"epochs": 1, "max_steps": 3, "batch": 16, "lr": 0.001, "weight_decay": 0, "optimizer": "adam", "clip_norm": 100, "seed": 2, "log_every": 50, "test_limit": 32}
}`)
	s, tr, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := Data{Name: "fashionmnist", Shape: datakind.ImageShape(28, 28, 1), Embedded: true, TrainLimit: 64, Subset: SubsetFirst}
	if s.Model != "realnvp" || s.Data != want || s.ModelConfig.(realnvp.Config).Mid != 4 || !strings.Contains(string(tr), `"batch": 16`) {
		t.Errorf("version 1 read as %+v, train %s", s, tr)
	}
	write(t, dir, `{"version": 1, "model": "glow", "data": {"name": "mnist"}}`)
	if _, _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "glow") {
		t.Errorf("version 1 glow: %v", err)
	}
}

// TestReadRejects checks that a bad config.json is an error naming the
// file and the field, before any model is built.
func TestReadRejects(t *testing.T) {
	dir := t.TempDir()
	base := `{"version":2,"model":"realnvp","preset":"tiny","model_config":{"mid":4,"blocks":1},"objective":{"name":"likelihood"},"data":{"name":"mnist","kind":"image","height":28,"width":28,"channels":1,"train_limit":0,"subset_seed":0},"train":{}}`
	write(t, dir, base)
	if _, _, err := Read(dir); err != nil {
		t.Fatalf("base config: %v", err)
	}
	for i, c := range []struct {
		old, new, want string
	}{
		{`"height":28,"width"`, `"height":1000000000,"width"`, "data: height 1000000000 is out of range"}, // 0
		{`"width":28`, `"width":-3`, "data: width -3"},                                                    // 1
		{`"model":"realnvp"`, `"model":"glow9"`, `unknown model "glow9"`},                                 // 2
		{`"version":2`, `"version":9`, "unsupported version 9"},                                           // 3
		{`"mid":4`, `"mid":4,"height":56`, "model_config: height 56 differs"},                             // 4
		{`"kind":"image"`, `"kind":"sound"`, `kind "sound"`},                                              // 5
		{`"train_limit":0`, `"train_limit":0,"colour":true`, `unknown field "colour"`},                    // 6
		{`"mid":4`, `"mid":400000`, "mid 400000 is out of range"},                                         // 7
	} {
		write(t, dir, strings.Replace(base, c.old, c.new, 1))
		_, _, err := Read(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, FileName)) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d: error %v, want one naming %s and %q", i, err, filepath.Join(dir, FileName), c.want)
		}
	}
	if _, _, err := Read(filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "not a run folder") {
		t.Errorf("missing folder: %v", err)
	}
	big := make([]byte, maxFileSize+10)
	os.WriteFile(filepath.Join(dir, FileName), big, 0o644)
	if _, _, err := Read(dir); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge config.json: %v", err)
	}
}

func TestLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	unlock, err := Lock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(dir); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, LockFile)) {
		t.Errorf("second Lock: %v, want ErrLocked naming the lock file", err)
	}
	unlock()
	unlock2, err := Lock(dir)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

func TestThreshold(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadThreshold(dir); !errors.Is(err, ErrNoThreshold) {
		t.Errorf("no threshold: %v", err)
	}
	want := Threshold{LogLikelihood: jsonfloat.Float(math.Inf(-1)), PerDim: jsonfloat.Float(math.Inf(1)), Unit: "bits/dim",
		TPR: 0.95, Dataset: "mnist", Split: "test", N: 20, Checkpoint: "best", Rule: ThresholdRule}
	if err := WriteThreshold(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadThreshold(dir)
	if err != nil || got != want {
		t.Errorf("read %+v, %v; wrote %+v", got, err, want)
	}
}
