package serve

import (
	"math"
	"slices"
	"testing"
)

// TestScoreBuckets checks a score histogram's buckets against quantiles
// and steps worked out by hand.
func TestScoreBuckets(t *testing.T) {
	// 101 in-distribution scores 0, 1, ..., 100 (shuffled): the p-quantile
	// is 100p; threshold 5, median 50, so the step s is 45.
	in := make([]float64, 101)
	for i := range in {
		in[i] = float64((i * 37) % 101)
	}
	got := scoreBuckets(5, true, append(in, math.NaN(), math.Inf(-1)))
	want := []float64{5 - 64*45, 5 - 32*45, 5 - 16*45, 5 - 8*45, 5 - 4*45, 5 - 2*45, 5 - 45,
		1, 5, 25, 50, 75, 95, 99, 50 + 2*45, 50 + 4*45, 50 + 8*45}
	// 50 + 45 = 95 is a quantile already
	if !slices.Equal(got, want) {
		t.Errorf("buckets %v\nwant    %v", got, want)
	}
	// No in-distribution scores: a symmetric log scale and the threshold.
	got = scoreBuckets(-3, true, nil)
	want = []float64{-1e6, -1e5, -1e4, -1000, -100, -10, -3, -1, 0, 1, 10, 100, 1000, 1e4, 1e5, 1e6}
	if !slices.Equal(got, want) {
		t.Errorf("without data: %v\nwant %v", got, want)
	}
	// Without a threshold the 5% quantile stands in; buckets increase.
	got = scoreBuckets(0, false, in)
	for i := 1; i < len(got); i++ {
		if !(got[i] > got[i-1]) {
			t.Fatalf("buckets not increasing: %v", got)
		}
	}
	if !slices.Contains(got, 5-45) {
		t.Errorf("without a threshold: %v lacks 5%% quantile - s = -40", got)
	}
}
