package experiment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
)

func writeNPZ(t *testing.T, path string, splits ...string) {
	t.Helper()
	var arrays []*data.Array
	for _, s := range splits {
		arrays = append(arrays, &data.Array{Name: s, DType: "<f4", Shape: []int{2, 3}, F32: []float32{1, 2, 3, 4, 5, 6}})
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := data.WriteNPZ(f, arrays, false); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestTrainSplit checks which split tabular runs train and are tested on:
// train where there is one, else val when test exists (never test).
func TestTrainSplit(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct {
		splits      []string
		train, held string
		trainErr    string
	}{
		{[]string{"train", "test"}, "train", "test", ""},   // 0
		{[]string{"val", "test"}, "val", "test", ""},       // 1: as the mirror's MINIBOONE
		{[]string{"train", "val"}, "train", "val", ""},     // 2
		{[]string{"test"}, "", "test", "no train split"},   // 3
		{[]string{"embeddings"}, "", "", "no train split"}, // 4: an OOD set only
	} {
		path := filepath.Join(dir, strings.Join(c.splits, "-")+".npz")
		writeNPZ(t, path, c.splits...)
		got, err := trainSplit(path)
		if got != c.train || (c.trainErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.trainErr)) {
			t.Errorf("%d: trainSplit(%v) = %q, %v; want %q (error %q)", i, c.splits, got, err, c.train, c.trainErr)
		}
		if held, err := heldOutSplit(path); c.held != "" && (held != c.held || err != nil) {
			t.Errorf("%d: heldOutSplit(%v) = %q, %v; want %q", i, c.splits, held, err, c.held)
		}
	}
	if got, err := trainSplit("miniboone"); got != "val" || err != nil {
		t.Errorf("trainSplit(miniboone) = %q, %v; want val (the registry has MAF's val and test splits)", got, err)
	}
	if got := oodSplit(filepath.Join(dir, "embeddings.npz"), false); got != "embeddings" {
		t.Errorf("oodSplit of an embeddings-only file = %q", got)
	}
}
