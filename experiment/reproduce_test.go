package experiment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReproduceTiny runs every recipe at the tiny preset: each finishes
// and writes a report with its measured table, its commands and the
// machine; a second run of one reuses its runs and only evaluates.
// Without FLOWOOD_MIRROR only the embedded subsets are reachable, and
// the reports say which rows were not run.
func TestReproduceTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several tiny models")
	}
	for _, rec := range Recipes() {
		t.Run(rec.ID, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), rec.ID)
			if err := Reproduce(context.Background(), rec.ID, "tiny", out, nil); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(out, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"# " + rec.ID, "AUROC", "flowood train", "Wall time", "SHA-256"} {
				if want == "AUROC" && rec.ID != "table1" && rec.ID != "scores" {
					want = map[string]string{"fig1a": "mean log-likelihood", "fig2": "latents-mnist-test.png",
						"fig16": "resample-mnist-test.png", "logdet": "logdet-diff.png"}[rec.ID]
				}
				if !strings.Contains(string(b), want) {
					t.Errorf("report lacks %q:\n%s", want, b)
				}
			}
			if rec.ID != "fig1a" {
				return
			}
			st, err := os.Stat(filepath.Join(out, "runs", "realnvp-fashionmnist", "checkpoint", "latest", "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if err := Reproduce(context.Background(), rec.ID, "tiny", out, nil); err != nil {
				t.Fatal(err)
			}
			st2, err := os.Stat(filepath.Join(out, "runs", "realnvp-fashionmnist", "checkpoint", "latest", "model.safetensors"))
			if err != nil || !st2.ModTime().Equal(st.ModTime()) {
				t.Errorf("a second reproduction retrained the run (%v)", err)
			}
		})
	}
}

func TestReproduceErrors(t *testing.T) {
	if err := Reproduce(context.Background(), "table99", "tiny", t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "known: fig1a") {
		t.Errorf("unknown experiment: %v", err)
	}
	if err := Reproduce(context.Background(), "table1", "huge", t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "unknown preset") {
		t.Errorf("unknown preset: %v", err)
	}
}
