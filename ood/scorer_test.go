package ood

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/data/pixels"
	"github.com/flowood/flowood/tensor"
)

// sumModel's log-density is the sum of the dequantised pixels, so scores
// can be computed independently.
type sumModel struct{ nan bool }

func (m sumModel) LogProb(u *tensor.Tensor) *tensor.Tensor {
	lp := tensor.SumPerExample(u)
	if m.nan {
		lp.Data[len(lp.Data)-1] = float32(math.NaN())
	}
	return lp
}

func (sumModel) SetTraining(bool) {}

func TestLogLikelihoodScore(t *testing.T) {
	im := &data.Images{Name: "toy", N: 5, H: 2, W: 2, C: 1, Pix: make([]uint8, 20)}
	for i := range im.Pix {
		im.Pix[i] = uint8(i * 13)
	}
	s := &LogLikelihood{Model: sumModel{}, Batch: 2, Midpoint: true}
	got, err := s.Score(context.Background(), im, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("%d scores for limit 4", len(got))
	}
	for i, v := range got {
		var want float64
		for j := 0; j < 4; j++ {
			want += (float64(im.Pix[i*4+j]) + 0.5) / 256
		}
		if math.Abs(v-want) > 1e-5 {
			t.Errorf("score %d = %v, want %v", i, v, want)
		}
	}
	// noise: deterministic per seed, and within a pixel's width of the midpoint
	s = &LogLikelihood{Model: sumModel{}, Seed: 3}
	a, _ := s.Score(context.Background(), im, 0)
	b, _ := s.Score(context.Background(), im, 0)
	mid, _ := (&LogLikelihood{Model: sumModel{}, Midpoint: true}).Score(context.Background(), im, 0)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seeded scores differ: %v vs %v", a, b)
		}
		// each of the 4 pixels moves at most half a bin, 1/512, from the midpoint
		if d := math.Abs(a[i] - mid[i]); d > 4.0/512+1e-6 {
			t.Errorf("score %d is %v from the midpoint score, more than 4/512", i, d)
		}
	}
	if _, err := (&LogLikelihood{Model: sumModel{nan: true}, Midpoint: true}).Score(context.Background(), im, 0); err == nil || !strings.Contains(err.Error(), "toy") {
		t.Errorf("NaN score: error %v, want one naming the dataset", err)
	}
}

// TestLogLikelihoodImageNoise checks ImageNoise: each image is
// dequantised with the noise of its own pixels (computed here with
// pixels.Dequantize and pixels.ImageNoise), so the same image scores the
// same at any position and batch size.
func TestLogLikelihoodImageNoise(t *testing.T) {
	im := &data.Images{Name: "toy", N: 5, H: 2, W: 3, C: 1, Pix: make([]uint8, 30)}
	for i := range im.Pix {
		im.Pix[i] = uint8(i * 37 % 251)
	}
	copy(im.Pix[24:30], im.Pix[6:12]) // image 4 is image 1
	for _, batch := range []int{1, 2, 256} {
		got, err := (&LogLikelihood{Model: sumModel{}, Batch: batch, Seed: 7, ImageNoise: true}).Score(context.Background(), im, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			px := im.Pix[i*6 : (i+1)*6]
			u := make([]float32, 6)
			pixels.Dequantize(u, px, pixels.ImageNoise(px))
			var want float64
			for _, x := range u {
				want += float64(x)
			}
			if math.Abs(v-want) > 1e-6 {
				t.Errorf("batch %d, image %d: %v, want %v", batch, i, v, want)
			}
		}
		if got[1] != got[4] {
			t.Errorf("batch %d: the same image scored %v and %v", batch, got[1], got[4])
		}
	}
}

func TestBitsPerDim(t *testing.T) {
	// A uniform density on [0,1)^D (log p = 0) is exactly 8 bits/dim.
	if got := BitsPerDim(0, 784); math.Abs(got-8) > 1e-12 {
		t.Errorf("BitsPerDim(0) = %v, want 8", got)
	}
	// Doubling the density everywhere saves exactly one bit per image.
	if got := BitsPerDim(math.Ln2, 1); math.Abs(got-7) > 1e-12 {
		t.Errorf("BitsPerDim(ln 2, 1) = %v, want 7", got)
	}
}
