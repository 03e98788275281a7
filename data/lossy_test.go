package data

import (
	"math"
	"os"
	"testing"
)

// TestJPEGRoundTrip checks the round trip on real images: it changes
// them (JPEG is lossy), by little at quality 95 and by more at 10, keeps
// the shape and the original, and records what was done.
func TestJPEGRoundTrip(t *testing.T) {
	im, err := Load("fashionmnist", "test", Options{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	im = im.Subset([]int{0, 1, 2, 3, 4, 5, 6, 7})
	rgb := &Images{Name: "rgb", N: im.N, H: im.H, W: im.W, C: 3, Pix: make([]uint8, 3*len(im.Pix))}
	for i, v := range im.Pix {
		rgb.Pix[3*i], rgb.Pix[3*i+1], rgb.Pix[3*i+2] = v, v, v/2 // mild chroma: 4:2:0 subsampling costs little
	}
	for _, src := range []*Images{im, rgb} {
		orig := append([]uint8(nil), src.Pix...)
		mae := func(q int) float64 {
			out, err := JPEGRoundTrip(src, q)
			if err != nil {
				t.Fatal(err)
			}
			if out.N != src.N || out.C != src.C || len(out.Pix) != len(src.Pix) || out.Lossy == nil || out.Lossy.Quality != q {
				t.Fatalf("round trip gave %dx%dx%dx%d, lossy %v", out.N, out.H, out.W, out.C, out.Lossy)
			}
			var s float64
			for i := range out.Pix {
				s += math.Abs(float64(out.Pix[i]) - float64(src.Pix[i]))
			}
			return s / float64(len(out.Pix))
		}
		hi, lo := mae(95), mae(10)
		if !(hi > 0 && hi < 4 && lo > 2*hi) {
			t.Errorf("%d channels: mean absolute change %.2f at quality 95, %.2f at 10", src.C, hi, lo)
		}
		for i := range orig {
			if orig[i] != src.Pix[i] {
				t.Fatal("the round trip changed its input")
			}
		}
	}
	if _, err := JPEGRoundTrip(im, 0); err == nil {
		t.Error("quality 0 accepted")
	}
}

// TestMirrorCIFAR10IsLossy checks that the mirror's JPEG CIFAR-10 says
// so.
func TestMirrorCIFAR10IsLossy(t *testing.T) {
	if os.Getenv("FLOWOOD_MIRROR") == "" {
		t.Skip("FLOWOOD_MIRROR not set")
	}
	im, err := Load("cifar10", "test", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if im.Lossy == nil || im.Lossy.Format != "jpeg" || im.Lossy.Quality != 75 || im.Lossy.Width != 32 {
		t.Errorf("mirror CIFAR-10 lossy %v, want jpeg quality 75 at 32x32", im.Lossy)
	}
}
