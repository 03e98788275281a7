package ood

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/tensor"
)

func TestAcceptThreshold(t *testing.T) {
	// 20 scores 1..20: k = 19 (19/20 = 0.95), the 19th largest is 2, so
	// 19 of 20 are accepted and 1 is rejected.
	in := make([]float64, 20)
	for i := range in {
		in[i] = float64(20 - i)
	}
	for _, c := range []struct {
		tpr, want float64
	}{
		{0.95, 2},  // 0
		{1, 1},     // 1
		{0.5, 11},  // 2: k = 10
		{0.01, 20}, // 3: k = 1
	} {
		got, err := AcceptThreshold(in, c.tpr)
		if err != nil || got != c.want {
			t.Errorf("AcceptThreshold(1..20, %v) = %v, %v; want %v", c.tpr, got, err, c.want)
		}
		// at least tpr of in are at or above it, and it is the largest such
		var acc int
		for _, v := range in {
			if v >= got {
				acc++
			}
		}
		if float64(acc)/20 < c.tpr {
			t.Errorf("tpr %v: accepts %d of 20", c.tpr, acc)
		}
		// FPRAtTPR uses the same threshold
		out := []float64{got - 0.5, got, got + 0.5}
		if fpr := FPRAtTPR(in, out, c.tpr); fpr != 2.0/3 {
			t.Errorf("tpr %v: FPRAtTPR = %v, want 2/3 (the threshold itself is accepted)", c.tpr, fpr)
		}
	}
	// 100 scores: the 5th percentile under this rule is the 95th largest
	in = in[:0]
	for i := range 100 {
		in = append(in, float64(i)) // 0..99
	}
	if got, _ := AcceptThreshold(in, 0.95); got != 5 {
		t.Errorf("AcceptThreshold(0..99, 0.95) = %v, want 5 (95 of 100 scores are >= 5)", got)
	}
	if got, _ := AcceptThreshold([]float64{math.Inf(-1), 3}, 0.95); !math.IsInf(got, -1) {
		t.Errorf("with -Inf: %v", got)
	}
	if _, err := AcceptThreshold(nil, 0.95); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if _, err := AcceptThreshold([]float64{math.NaN()}, 0.95); !errors.Is(err, ErrNaNScore) {
		t.Errorf("NaN: %v", err)
	}
	if _, err := AcceptThreshold([]float64{1}, 0); err == nil {
		t.Error("tpr 0 accepted")
	}
}

// TestScoreCancelled checks that scoring stops between batches once its
// context is done.
func TestScoreCancelled(t *testing.T) {
	im := &data.Images{Name: "toy", N: 10, H: 2, W: 2, C: 1, Pix: make([]uint8, 40)}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	m := countModel{calls: &calls, after: 2, cancel: cancel}
	_, err := (&LogLikelihood{Model: m, Batch: 2, Midpoint: true}).Score(ctx, im, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Score after cancel: %v", err)
	}
	if calls != 2 {
		t.Errorf("%d batches scored, want 2 (cancelled during the second)", calls)
	}
}

// TestScoreShortTail checks that a last batch of at most flow.EvalChunk
// examples joins the one before, when batches are larger than that.
func TestScoreShortTail(t *testing.T) {
	for _, c := range []struct {
		n, batch int
		want     []int
	}{
		{20, 16, []int{20}},           // 0: a tail of 4 joins
		{24, 16, []int{24}},           // 1: a tail of 8 joins
		{25, 16, []int{16, 9}},        // 2: a tail of 9 stays
		{40, 16, []int{16, 24}},       // 3
		{10, 2, []int{2, 2, 2, 2, 2}}, // 4: batches of 8 or fewer are as asked
	} {
		im := &data.Images{Name: "toy", N: c.n, H: 2, W: 2, C: 1, Pix: make([]uint8, 4*c.n)}
		var sizes []int
		_, err := (&LogLikelihood{Model: sizeModel{&sizes}, Batch: c.batch, Midpoint: true}).Score(context.Background(), im, 0)
		if err != nil || fmt.Sprint(sizes) != fmt.Sprint(c.want) {
			t.Errorf("n %d batch %d: batches %v (%v), want %v", c.n, c.batch, sizes, err, c.want)
		}
	}
}

// sizeModel is sumModel that records its batch sizes.
type sizeModel struct{ sizes *[]int }

func (m sizeModel) LogProb(u *tensor.Tensor) *tensor.Tensor {
	*m.sizes = append(*m.sizes, u.Shape[0])
	return sumModel{}.LogProb(u)
}

func (sizeModel) SetTraining(bool) {}

// countModel is sumModel that cancels a context on its after-th call.
type countModel struct {
	calls  *int
	after  int
	cancel func()
}

func (m countModel) LogProb(u *tensor.Tensor) *tensor.Tensor {
	*m.calls++
	if *m.calls == m.after {
		m.cancel()
	}
	return sumModel{}.LogProb(u)
}

func (countModel) SetTraining(bool) {}
