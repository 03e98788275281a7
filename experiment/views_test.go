package experiment

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestLogDetView checks the per-layer view against flowood eval: for the
// same --limit and --seed, the terms' means add up to the mean
// log-likelihood eval reports for each set; and its files are written.
func TestLogDetView(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	tinyRun(t, run, 6)
	met, err := Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, Limit: 30, Seed: 3, Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "view")
	terms, err := LogDetView(context.Background(), run, ViewOptions{OOD: []string{"mnist"}, N: 30, Seed: 3, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	for label, want := range map[string]float64{"fashionmnist test": float64(met.In.MeanLogLik), "mnist test": float64(met.OODSets["mnist"].MeanLogLik)} {
		var sum float64
		for _, tm := range terms[label] {
			sum += tm.Mean
		}
		if len(terms[label]) < 10 || math.Abs(sum-want) > 1e-4*math.Abs(want) {
			t.Errorf("%s: %d terms summing to %v, eval's mean log-likelihood %v", label, len(terms[label]), sum, want)
		}
	}
	for _, f := range []string{"logdet.png", "logdet-diff.png", "logdet.csv", "logdet.npy"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
