package runfile

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/internal/jsonfloat"
)

// writeRun makes a minimal run folder (config.json) with a weights file.
func writeRun(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "checkpoint", "best"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"version":1,"model":"realnvp"}`), 0o644)
	os.WriteFile(filepath.Join(dir, "checkpoint", "best", "model.safetensors"), []byte("weights"), 0o644)
}

// TestCalibration writes and reads thresholds.json, and locates a
// reference run relative to the run, then by its absolute path, and
// names both places when it is gone.
func TestCalibration(t *testing.T) {
	root := t.TempDir()
	run, bg := filepath.Join(root, "run"), filepath.Join(root, "bg")
	writeRun(t, run)
	writeRun(t, bg)
	ref, err := NewReference(run, bg, "background", "best", "model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	// sha256("weights"), computed with sha256sum
	if ref.Path != "../bg" || ref.Abs != bg || ref.ModelSHA256 != "9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c" {
		t.Errorf("reference %+v", ref)
	}
	c := Calibration{Version: CalibrationVersion, TPR: 0.95, Scores: []ScoreCalibration{
		{Name: "loglik", Threshold: -12.5},
		{Name: "lr", Threshold: jsonfloat.Float(math.Inf(-1)), References: []Reference{ref}},
	}}
	if err := WriteCalibration(run, c); err != nil {
		t.Fatal(err)
	}
	back, err := ReadCalibration(run)
	if err != nil {
		t.Fatal(err)
	}
	if lr, ok := back.Score("lr"); !ok || !math.IsInf(float64(lr.Threshold), -1) || lr.References[0] != ref {
		t.Errorf("read back %+v", back)
	}
	if strings.Join(back.Names(), ",") != "loglik,lr" {
		t.Errorf("names %v", back.Names())
	}
	if dir, err := ref.Locate(run); err != nil || dir != filepath.Join(run, "..", "bg") {
		t.Errorf("locate: %q, %v", dir, err)
	}
	// Moved with the run: found relative to it.
	moved := filepath.Join(root, "moved")
	os.MkdirAll(moved, 0o755)
	if err := os.Rename(run, filepath.Join(moved, "run")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bg, filepath.Join(moved, "bg")); err != nil {
		t.Fatal(err)
	}
	if dir, err := ref.Locate(filepath.Join(moved, "run")); err != nil || dir != filepath.Join(moved, "run", "..", "bg") {
		t.Errorf("locate after moving both: %q, %v", dir, err)
	}
	// Gone from both places.
	os.RemoveAll(filepath.Join(moved, "bg"))
	if _, err := ref.Locate(filepath.Join(moved, "run")); err == nil || !strings.Contains(err.Error(), "background run") ||
		!strings.Contains(err.Error(), bg) || !strings.Contains(err.Error(), "thresholds.json") {
		t.Errorf("missing reference: %v", err)
	}

	for _, bad := range []struct{ body, want string }{
		{`{"version":2,"tpr":0.95}`, "version 2"},
		{`{"version":1,"tpr":0}`, "tpr 0"},
		{`{"version":1,"tpr":0.95,"scores":[{"name":"a","threshold":1},{"name":"a","threshold":2}]}`, "score a twice"},
		{`{"version":1,"tpr":0.95,"scores":[{"name":"a","threshold":"NaN"}]}`, "NaN"},
		{`{"version":1,`, "thresholds.json"},
	} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "eval"), 0o755)
		os.WriteFile(filepath.Join(dir, CalibrationFile), []byte(bad.body), 0o644)
		if _, err := ReadCalibration(dir); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: error %v, want one containing %q", bad.body, err, bad.want)
		}
	}
	if _, err := ReadCalibration(t.TempDir()); err == nil || !strings.Contains(err.Error(), "flowood eval") {
		t.Errorf("no file: %v", err)
	}
}
