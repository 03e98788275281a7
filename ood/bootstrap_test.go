package ood

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4}
	for _, c := range []struct{ q, want float64 }{
		{0, 1}, {0.25, 1.75}, {0.5, 2.5}, {1, 4}, {0.975, 3.925},
	} {
		if got := percentile(s, c.q); !near(got, c.want, 1e-12) {
			t.Errorf("percentile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if got := percentile([]float64{7}, 0.3); got != 7 {
		t.Errorf("percentile of singleton = %v", got)
	}
}

func TestBootstrapCoversTruth(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	in := randomScores(rng, 400, 1, false)
	out := randomScores(rng, 400, 0, false)
	truth := 0.760249 // Phi(1/sqrt(2)).
	point := AUROC(in, out)
	lo, hi := Bootstrap(in, out, AUROC, 500, rand.New(rand.NewPCG(1, 1)))
	if !(lo <= point && point <= hi) {
		t.Errorf("interval [%v, %v] excludes the point estimate %v", lo, hi, point)
	}
	if !(lo <= truth && truth <= hi) {
		t.Errorf("interval [%v, %v] excludes the true AUROC %v", lo, hi, truth)
	}
	// Standard error of AUROC here is about 0.017, so the 95% interval
	// should be roughly 0.066 wide.
	if w := hi - lo; w < 0.03 || w > 0.12 {
		t.Errorf("interval width %v implausible", w)
	}
	lo2, hi2 := Bootstrap(in, out, AUROC, 500, rand.New(rand.NewPCG(1, 1)))
	if lo2 != lo || hi2 != hi {
		t.Errorf("same seed gave [%v, %v] then [%v, %v]", lo, hi, lo2, hi2)
	}
}

func TestBootstrapEdgeCases(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := []float64{2, 3}
	out := []float64{0, 1}
	if lo, hi := Bootstrap(in, out, AUROC, 50, rng); lo != 1 || hi != 1 {
		t.Errorf("separated sets: [%v, %v], want [1, 1]", lo, hi)
	}
	if lo, hi := Bootstrap(in, out, AUROC, 0, rng); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("n = 0: [%v, %v], want NaN", lo, hi)
	}
	if lo, hi := Bootstrap(nil, out, AUROC, 10, rng); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("empty in: [%v, %v], want NaN", lo, hi)
	}
	nan := func(in, out []float64) float64 { return math.NaN() }
	if lo, hi := Bootstrap(in, out, nan, 10, rng); !math.IsNaN(lo) || !math.IsNaN(hi) {
		t.Errorf("all-NaN metric: [%v, %v], want NaN", lo, hi)
	}
}

// TestEvaluateCI checks the intervals of EvaluateCI: each contains its
// full-sample metric, and they narrow as the sets grow (16x the data:
// about a quarter of the width).
func TestEvaluateCI(t *testing.T) {
	width := func(n int) float64 {
		rng := rand.New(rand.NewPCG(uint64(n), 5))
		in, out := randomScores(rng, n, 1, false), randomScores(rng, n, 0, false)
		r, err := EvaluateCI(in, out, 400, rng)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			point float64
			ci    *Interval
		}{{"auroc", r.AUROC, r.AUROCCI}, {"aupr_in", r.AUPRIn, r.AUPRInCI}, {"aupr_out", r.AUPROut, r.AUPROutCI}, {"fpr", r.FPRAt95TPR, r.FPRCI}} {
			if c.ci == nil || c.ci[0] > c.point || c.ci[1] < c.point || c.ci[0] >= c.ci[1] {
				t.Errorf("n=%d %s: interval %v does not contain %v", n, c.name, c.ci, c.point)
			}
		}
		return r.AUROCCI[1] - r.AUROCCI[0]
	}
	small, large := width(100), width(1600)
	if ratio := large / small; ratio < 0.15 || ratio > 0.4 {
		t.Errorf("AUROC interval width %v at n=100, %v at n=1600: ratio %v, want about 1/4", small, large, ratio)
	}
}
