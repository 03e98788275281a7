package data

import (
	"bytes"
	"slices"
	"testing"
)

func TestImagesAccessors(t *testing.T) {
	im := &Images{Name: "x", N: 3, H: 1, W: 2, C: 2, Pix: []uint8{
		0, 1, 2, 3,
		10, 11, 12, 13,
		20, 21, 22, 23,
	}, Labels: []uint8{7, 8, 9}}
	if err := im.Validate(); err != nil {
		t.Fatal(err)
	}
	if im.Dim() != 4 {
		t.Errorf("Dim = %d, want 4", im.Dim())
	}
	if got := im.Image(1); !bytes.Equal(got, []uint8{10, 11, 12, 13}) {
		t.Errorf("Image(1) = %v", got)
	}
	if got := im.Image(2); cap(got) != 4 {
		t.Errorf("Image(2) has capacity %d, want 4", cap(got))
	}

	sub := im.Subset([]int{2, 0, 2})
	if sub.N != 3 || sub.Name != "x" || sub.H != 1 || sub.W != 2 || sub.C != 2 {
		t.Errorf("Subset shape %+v", sub)
	}
	if want := []uint8{20, 21, 22, 23, 0, 1, 2, 3, 20, 21, 22, 23}; !bytes.Equal(sub.Pix, want) {
		t.Errorf("Subset pixels %v, want %v", sub.Pix, want)
	}
	if !bytes.Equal(sub.Labels, []uint8{9, 7, 9}) {
		t.Errorf("Subset labels %v", sub.Labels)
	}
	sub.Pix[0] = 99
	if im.Pix[8] != 20 {
		t.Error("Subset shares storage with the original")
	}

	head := im.Head(2)
	if head.N != 2 || len(head.Pix) != 8 || !bytes.Equal(head.Labels, []uint8{7, 8}) {
		t.Errorf("Head(2) = %+v", head)
	}
	head.Pix = append(head.Pix, 42)
	if im.Pix[8] != 20 {
		t.Error("appending to Head's pixels overwrote the original")
	}
	if h := im.Head(10); h.N != 3 {
		t.Errorf("Head(10).N = %d, want 3", h.N)
	}
	if h := im.Head(-1); h.N != 0 || len(h.Pix) != 0 {
		t.Errorf("Head(-1).N = %d, want 0", h.N)
	}

	noLabels := &Images{N: 1, H: 1, W: 1, C: 1, Pix: []uint8{5}}
	if s := noLabels.Subset([]int{0}); s.Labels != nil {
		t.Error("Subset invented labels")
	}
}

func TestImagesFloat32(t *testing.T) {
	im := &Images{N: 3, H: 1, W: 1, C: 2, Pix: []uint8{0, 255, 1, 2, 3, 4}}
	dst := make([]float32, 4)
	im.Float32(dst, []int{2, 0})
	if want := []float32{3, 4, 0, 255}; !slices.Equal(dst, want) {
		t.Errorf("Float32 = %v, want %v", dst, want)
	}
	all := make([]float32, 6)
	im.Float32(all, nil)
	if want := []float32{0, 255, 1, 2, 3, 4}; !slices.Equal(all, want) {
		t.Errorf("Float32(nil) = %v, want %v", all, want)
	}
	defer func() {
		if recover() == nil {
			t.Error("Float32 into a short slice did not panic")
		}
	}()
	im.Float32(make([]float32, 3), []int{0, 1})
}

func TestImagesValidate(t *testing.T) {
	for _, im := range []*Images{
		{N: 2, H: 2, W: 2, C: 1, Pix: make([]uint8, 7)},
		{N: 2, H: 1, W: 1, C: 1, Pix: make([]uint8, 2), Labels: []uint8{1}},
		{N: -1},
	} {
		if err := im.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", im)
		}
	}
}
