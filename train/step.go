package train

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// gradient computes the gradient of obj's loss on the batch u into the
// model's parameters and returns the batch's loss to log: bits/dim for
// images (Shape.PerDim) of the training batch. For a PairObjective u holds
// the training batch and then as many examples of the second set, and the
// logged value is still the training batch's mean PerDim (the objective's
// own value, with the OOD term, is not logged). ok is false when the
// objective's loss is not finite; then the gradient is not to be used.
// With Parallel set, mean objectives take Parallel.Backward and pair
// objectives Parallel.BackwardWeighted; others one pass over the batch.
//
// The loss per dimension is what is logged; the gradient taken is that
// loss's, or with Config.Loss "nats" (the reference code's) that of the
// loss in nats per example: the per-dimension loss times -1/a, where a is
// its derivative by the mean log-likelihood (Shape.Affine).
func (r *Run) gradient(u *tensor.Tensor, obj Objective, shape datakind.Shape, cfg Config, params []*tensor.Tensor) (bpd float64, ok bool) {
	perDimA, _ := shape.Affine()
	grad := 1.0
	if cfg.Loss == "nats" {
		grad = -1 / perDimA
	}
	if mo, isMean := obj.(MeanObjective); isMean && r.Parallel != nil && cfg.Batch >= r.Parallel.Replicas() {
		a, b := mo.Affine(shape)
		bpd = r.Parallel.Backward(u, a*grad)*a + b
		return bpd, finite(bpd)
	}
	if po, pair := obj.(PairObjective); pair && r.Parallel != nil && u.Shape[0] >= r.Parallel.Replicas() {
		var lossValue float64
		lp := r.Parallel.BackwardWeighted(u, func(lp []float32) []float32 {
			coef, constant := po.Coefficients(lp, shape)
			lossValue = constant
			for i, c := range coef {
				lossValue += float64(c) * float64(lp[i])
				coef[i] = float32(float64(c) * grad)
			}
			return coef
		})
		return pairBPD(lp, shape, cfg.Batch), finite(lossValue)
	}
	lp := r.Model.LogProb(u)
	perDim := obj.Loss(lp, shape)
	lossValue := float64(perDim.Data[0])
	bpd = lossValue
	if _, pair := obj.(PairObjective); pair {
		bpd = pairBPD(lp.Data, shape, cfg.Batch)
	}
	if !finite(lossValue) {
		return bpd, false
	}
	loss := perDim
	if grad != 1 {
		loss = tensor.Scale(perDim, float32(grad))
	}
	for _, p := range params {
		p.ZeroGrad()
	}
	tensor.Backward(loss)
	return bpd, true
}

// pairBPD returns the mean PerDim of the training batch, the first b of
// lp.
func pairBPD(lp []float32, s datakind.Shape, b int) float64 {
	var sum float64
	for _, v := range lp[:b] {
		sum += s.PerDim(float64(v))
	}
	return sum / float64(b)
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// negatives returns the stream of obj's second set when obj is a
// PairObjective (restored from the checkpoint at latest when resuming,
// else starting at its beginning) and the number of examples of a step's
// batch: cfg.Batch, or twice that with a stream.
func (r *Run) negatives(obj Objective, shape datakind.Shape, cfg Config, latest string, st checkpoint.State) (*negStream, int, error) {
	po, ok := obj.(PairObjective)
	if !ok {
		return nil, cfg.Batch, nil
	}
	data := po.Negatives()
	if data == nil || data.Len() == 0 {
		return nil, 0, fmt.Errorf("objective %s: no negative examples", obj.Name())
	}
	if got := datakind.ShapeOf(data.Shape()); got != shape {
		return nil, 0, fmt.Errorf("objective %s: negative set %s has %s examples, the training set %s", obj.Name(), data.Label(), got, shape)
	}
	s := newNegStream(data, cfg.Seed)
	if r.Resume {
		if err := s.restore(st, latest); err != nil {
			return nil, 0, fmt.Errorf("resuming: %w", err)
		}
	}
	return s, 2 * cfg.Batch, nil
}
