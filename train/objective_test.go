package train_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// TestMaxLikelihoodLoss checks the loss against the per-dimension unit of
// each data kind: the mean of Shape.PerDim over the batch.
func TestMaxLikelihoodLoss(t *testing.T) {
	lp := tensor.FromData([]float32{-1200, -900.5, 310, 0}, 4)
	for _, s := range []datakind.Shape{datakind.ImageShape(28, 28, 1), datakind.ImageShape(32, 32, 3), datakind.TabularShape(43)} {
		var want float64
		for _, v := range lp.Data {
			want += s.PerDim(float64(v)) / 4
		}
		got := float64(train.MaxLikelihood{}.Loss(lp, s).Data[0])
		if math.Abs(got-want) > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("%v: loss %v, want the mean %s %v", s, got, s.Unit(), want)
		}
	}
	if o, err := train.NewObjective(""); err != nil || o.Name() != "likelihood" {
		t.Errorf("default objective %v, %v", o, err)
	}
	if _, err := train.NewObjective("negative9"); err == nil || !strings.Contains(err.Error(), "negative9") {
		t.Errorf("unknown objective: %v", err)
	}
}

// TestTooManyEpochs checks that an epoch count whose step count
// overflows is an error, not a run of zero steps.
func TestTooManyEpochs(t *testing.T) {
	tr, te := fashion(t)
	r := &train.Run{Model: tinyModel(), Config: train.Config{Epochs: 1 << 62, Batch: 16}, Train: tr, Test: te, Dir: t.TempDir()}
	res, err := r.Execute(context.Background())
	if err == nil || !strings.Contains(err.Error(), "too many steps") || res.Steps != 0 {
		t.Errorf("2^62 epochs: %+v, %v", res, err)
	}
}
