package data

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTableNPZ(t *testing.T, path string, arrays []*Array) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteNPZ(f, arrays, true); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTableFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "emb.npz")
	writeTableNPZ(t, path, []*Array{
		{Name: "test", DType: "<f4", Shape: []int{2, 3}, F32: []float32{1, 2, 3, 4, 5, 6}},
		{Name: "train", DType: "<f8", Shape: []int{1, 3}, F64: []float64{7, 8, 9}},
		{Name: "labels", DType: "<i8", Shape: []int{2}, I64: []int64{0, 1}},
	})
	if !IsTableFile(path) || IsTableFile("miniboone") {
		t.Errorf("IsTableFile")
	}
	splits, err := TableFileSplits(path)
	if err != nil || strings.Join(splits, ",") != "train,test" {
		t.Errorf("TableFileSplits = %v, %v; want train,test", splits, err)
	}
	tb, err := LoadTableFile(path, "test")
	if err != nil {
		t.Fatal(err)
	}
	if tb.N != 2 || tb.D != 3 || tb.X[5] != 6 || tb.Split != "test" || tb.Name != path {
		t.Errorf("test split %+v", tb)
	}
	if _, err := LoadTableFile(path, "val"); err == nil || !strings.Contains(err.Error(), `no array "val"`) || !strings.Contains(err.Error(), "labels, test, train") {
		t.Errorf("missing split: %v", err)
	}
	bad := filepath.Join(dir, "bad.npz")
	writeTableNPZ(t, bad, []*Array{{Name: "x", DType: "<f4", Shape: []int{1, 1}, F32: []float32{1}}})
	if _, err := TableFileSplits(bad); err == nil || !strings.Contains(err.Error(), "has: x") {
		t.Errorf("file without splits: %v", err)
	}
	if _, err := TableFileSplits(filepath.Join(dir, "none.npz")); err == nil || !strings.Contains(err.Error(), "none.npz") {
		t.Errorf("missing file: %v", err)
	}
}
