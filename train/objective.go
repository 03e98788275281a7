package train

import (
	"fmt"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
)

// Objective is what a training step minimises, as a function of the
// batch's log-likelihoods.
//
// There are two: maximum likelihood (MaxLikelihood) and the paper's
// negative training (Negative, App. D, eq. 6), which also pushes down the
// log-likelihood of a second, out-of-distribution stream where it exceeds
// a threshold c. Negative is a PairObjective: it names the stream it
// draws from (the loop keeps its position in checkpoints) and receives
// the log-likelihoods of both batches. It is not a MeanObjective (its
// per-example weights depend on the log-likelihoods): Parallel computes
// its gradient with BackwardWeighted.
type Objective interface {
	// Name is the objective's name in config.json ("objective").
	Name() string
	// Loss returns the scalar loss, shape [1], of a batch whose recorded
	// log-likelihoods (nats) are lp, shape [B], for examples of shape s;
	// losses are per dimension (datakind.Shape.PerDim: bits/dim for images,
	// nats/dim for tables), so that they compare across data sizes.
	Loss(lp *tensor.Tensor, s datakind.Shape) *tensor.Tensor
}

// MeanObjective is an Objective whose loss is a·mean(lp) + b: Parallel
// computes its gradient data-parallel (Parallel.Backward with scale a).
type MeanObjective interface {
	Objective
	// Affine returns a and b for examples of shape s.
	Affine(s datakind.Shape) (a, b float64)
}

// MaxLikelihood maximises the mean log-likelihood of the training batch:
// its loss is the batch's mean PerDim(log p(x)), bits/dim for images.
type MaxLikelihood struct{}

// Name returns "likelihood".
func (MaxLikelihood) Name() string { return "likelihood" }

// Affine returns s.Affine(): the loss is a·mean(lp) + b.
func (MaxLikelihood) Affine(s datakind.Shape) (a, b float64) { return s.Affine() }

// Loss returns a·mean(lp) + b.
func (o MaxLikelihood) Loss(lp *tensor.Tensor, s datakind.Shape) *tensor.Tensor {
	a, b := o.Affine(s)
	return tensor.AddScalar(tensor.Scale(tensor.Mean(lp), float32(a)), float32(b))
}

// objectives are the objectives by name.
var objectives = map[string]Objective{"likelihood": MaxLikelihood{}, "negative": Negative{}}

// NewObjective returns the named objective; the empty name is
// "likelihood". "negative" comes without its data: the caller sets
// Negative's fields.
func NewObjective(name string) (Objective, error) {
	if name == "" {
		name = "likelihood"
	}
	o, ok := objectives[name]
	if !ok {
		return nil, fmt.Errorf("unknown objective %q (known: likelihood, negative)", name)
	}
	return o, nil
}
