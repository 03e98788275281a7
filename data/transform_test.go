package data

import (
	"slices"
	"testing"
)

// seq returns an image set of n images of h x w x c holding 0, 1, 2, ...
func seq(n, h, w, c int) *Images {
	im := &Images{N: n, H: h, W: w, C: c, Pix: make([]uint8, n*h*w*c), Labels: make([]uint8, n)}
	for i := range im.Pix {
		im.Pix[i] = uint8(i)
	}
	for i := range im.Labels {
		im.Labels[i] = uint8(i + 1)
	}
	return im
}

func checkPix(t *testing.T, what string, im *Images, n, h, w, c int, want []uint8) {
	t.Helper()
	if err := im.Validate(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if im.N != n || im.H != h || im.W != w || im.C != c {
		t.Fatalf("%s: shape %dx%dx%dx%d, want %dx%dx%dx%d", what, im.N, im.H, im.W, im.C, n, h, w, c)
	}
	if want != nil && !slices.Equal(im.Pix, want) {
		t.Errorf("%s: pixels %v, want %v", what, im.Pix, want)
	}
}

func TestCenterCrop(t *testing.T) {
	in := seq(1, 4, 5, 1)
	got, err := CenterCrop(in, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "crop 4x5 to 2x3", got, 1, 2, 3, 1, []uint8{6, 7, 8, 11, 12, 13})
	// Two images, two channels: the window is the same in each.
	in = seq(2, 3, 3, 2)
	got, err = CenterCrop(in, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "crop 3x3x2 to 1x1", got, 2, 1, 1, 2, []uint8{8, 9, 26, 27})
	if !slices.Equal(got.Labels, []uint8{1, 2}) {
		t.Errorf("labels %v", got.Labels)
	}
	if _, err := CenterCrop(in, 4, 1); err == nil {
		t.Error("crop larger than the image accepted")
	}
}

func TestResizeArea(t *testing.T) {
	// 4x4 to 2x2: means of 2x2 blocks, halves rounded up.
	got, err := Resize(seq(1, 4, 4, 1), 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "area 4x4 to 2x2", got, 1, 2, 2, 1, []uint8{3, 5, 11, 13})
	// 1x3 to 1x2: each output covers 1.5 source pixels.
	in := &Images{N: 1, H: 1, W: 3, C: 1, Pix: []uint8{0, 30, 60}}
	got, err = Resize(in, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "area 1x3 to 1x2", got, 1, 1, 2, 1, []uint8{10, 50})
	// Channels are filtered separately.
	in = &Images{N: 1, H: 2, W: 1, C: 2, Pix: []uint8{0, 100, 10, 200}}
	got, err = Resize(in, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "area 2x1x2 to 1x1", got, 1, 1, 1, 2, []uint8{5, 150})
	// Same size is the identity.
	in = seq(2, 3, 4, 3)
	got, err = Resize(in, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "identity", got, 2, 3, 4, 3, in.Pix)
}

func TestResizeBilinear(t *testing.T) {
	in := &Images{N: 1, H: 1, W: 2, C: 1, Pix: []uint8{0, 100}}
	got, err := Resize(in, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "bilinear 1x2 to 1x4", got, 1, 1, 4, 1, []uint8{0, 25, 75, 100})
	// 2x2 to 4x4: rows and columns both interpolated.
	in = &Images{N: 1, H: 2, W: 2, C: 1, Pix: []uint8{0, 100, 100, 200}}
	got, err = Resize(in, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "bilinear 2x2 to 4x4", got, 1, 4, 4, 1, []uint8{
		0, 25, 75, 100,
		25, 50, 100, 125,
		75, 100, 150, 175,
		100, 125, 175, 200,
	})
	if _, err := Resize(in, 0, 3); err == nil {
		t.Error("resize to zero height accepted")
	}
}

func TestGrayscaleRGB(t *testing.T) {
	in := &Images{N: 1, H: 1, W: 4, C: 3, Labels: []uint8{7}, Pix: []uint8{
		255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30,
	}}
	g := Grayscale(in)
	checkPix(t, "grayscale", g, 1, 1, 4, 1, []uint8{76, 150, 29, 18})
	if !slices.Equal(g.Labels, []uint8{7}) {
		t.Errorf("labels %v", g.Labels)
	}
	c := RGB(g)
	checkPix(t, "rgb", c, 1, 1, 4, 3, []uint8{76, 76, 76, 150, 150, 150, 29, 29, 29, 18, 18, 18})
	checkPix(t, "rgb of rgb", RGB(in), 1, 1, 4, 3, in.Pix)
	checkPix(t, "gray of gray", Grayscale(g), 1, 1, 4, 1, g.Pix)
	if in.Pix[0] != 255 || g.Pix[0] != 76 {
		t.Error("input modified")
	}
}

func TestLoadConvertOptions(t *testing.T) {
	im, err := Load("mnist", "test", Options{Embedded: true, Size: 32, Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	checkPix(t, "mnist 32x32 rgb", im, 2000, 32, 32, 3, nil)
	if len(im.Labels) != 2000 || im.Name != "mnist" || im.Split != "test" {
		t.Errorf("labels %d, name %q, split %q", len(im.Labels), im.Name, im.Split)
	}
	if _, err := Load("mnist", "test", Options{Embedded: true, Channels: 2}); err == nil {
		t.Error("Channels 2 accepted")
	}
}
