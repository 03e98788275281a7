package data

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSampleIndices(t *testing.T) {
	a := SampleIndices(1000, 50, 7)
	if len(a) != 50 || !slices.IsSorted(a) || a[0] < 0 || a[49] >= 1000 {
		t.Fatalf("SampleIndices(1000, 50, 7) = %v", a)
	}
	for i := 1; i < len(a); i++ {
		if a[i] == a[i-1] {
			t.Fatalf("repeated index %d", a[i])
		}
	}
	if b := SampleIndices(1000, 50, 7); !slices.Equal(a, b) {
		t.Error("same seed, different subset")
	}
	if c := SampleIndices(1000, 50, 8); slices.Equal(a, c) {
		t.Error("another seed, same subset")
	}
	// a random subset, not the first ones: of 1000 class-sorted examples
	// (100 per class) 50 cover more than one class
	classes := map[int]bool{}
	for _, i := range a {
		classes[i/100] = true
	}
	if len(classes) < 5 {
		t.Errorf("subset covers %d of 10 classes: %v", len(classes), a)
	}
	// the subset of 50 is part of the subset of 100
	big := SampleIndices(1000, 100, 7)
	for _, i := range a {
		if _, ok := slices.BinarySearch(big, i); !ok {
			t.Errorf("index %d of the 50-subset is not in the 100-subset", i)
		}
	}
	if all := SampleIndices(5, 9, 1); !slices.Equal(all, []int{0, 1, 2, 3, 4}) {
		t.Errorf("n > total: %v", all)
	}
	if SampleIndices(5, 0, 1) != nil {
		t.Error("n = 0 gave indices")
	}
}

func TestExamplesRead(t *testing.T) {
	im := &Images{Name: "toy", Split: "test", N: 3, H: 1, W: 2, C: 1, Pix: []uint8{0, 1, 2, 3, 4, 5}}
	dst := make([]float32, 4)
	im.Read(dst, []int{2, 0}, nil)
	want := []float32{4.5 / 256, 5.5 / 256, 0.5 / 256, 1.5 / 256}
	if !slices.Equal(dst, want) || im.Label() != "toy test" || im.Len() != 3 || !slices.Equal(im.Shape(), []int{1, 2, 1}) {
		t.Errorf("Read = %v, want %v (label %q, shape %v)", dst, want, im.Label(), im.Shape())
	}
	// noise is drawn value by value in the order of idx, as Dequantize does
	r1, r2 := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
	im.Read(dst, []int{1, 2}, r1)
	ref := make([]float32, 4)
	Dequantize(ref, im.Pix[2:6], r2)
	if !slices.Equal(dst, ref) {
		t.Errorf("noisy Read = %v, Dequantize = %v", dst, ref)
	}
	tb := &Tabular{Name: "tab", N: 2, D: 2, X: []float64{1, 2, 3, 4}}
	tb.Read(dst, []int{1, 0}, nil)
	if !slices.Equal(dst, []float32{3, 4, 1, 2}) || !slices.Equal(tb.Shape(), []int{2}) {
		t.Errorf("tabular Read = %v", dst)
	}
}
