package flow

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Traced is a bijector made of parts (a multi-scale level: its steps and
// the next level) that can report each part's log-determinant. Chain and
// Recompute are traced by ForwardTrace itself.
type Traced interface {
	// ForwardTrace is Forward, calling visit with the log-det of each of
	// its parts, named under prefix as nn.Tensors names their tensors.
	ForwardTrace(x *tensor.Tensor, prefix string, visit func(name string, logDet *tensor.Tensor)) (z, logDet *tensor.Tensor)
}

// ForwardTrace maps x through b like b.Forward and calls visit with the
// log-det, per example, of every step: it descends into Chains, Recompute
// wrappers and Traced bijectors, and reports any other bijector as one
// step named by its path (the prefix of its tensors' checkpoint names).
// With visit nil it is b.Forward. visit must copy what it keeps: the
// tensor may be recycled after the call.
func ForwardTrace(b Bijector, x *tensor.Tensor, prefix string, visit func(name string, logDet *tensor.Tensor)) (z, logDet *tensor.Tensor) {
	if visit == nil {
		return b.Forward(x)
	}
	switch t := b.(type) {
	case Chain:
		var total *tensor.Tensor
		in := x
		for i, step := range t {
			z, ld := ForwardTrace(step, x, nn.Join(prefix, fmt.Sprint(i)), visit)
			if x != in && x != z {
				tensor.Done(x)
			}
			x = z
			total = addLogDet(total, ld)
		}
		return x, orZero(total, x)
	case *Recompute:
		if tensor.Recording(x) {
			break // the recomputing backward needs Forward's own graph
		}
		return ForwardTrace(t.Chain, x, prefix, visit)
	case Traced:
		return t.ForwardTrace(x, prefix, visit)
	}
	z, logDet = b.Forward(x)
	visit(prefix, logDet)
	return z, logDet
}

// Trace is log p(x) of a batch and its parts, per example (float64):
// LogProb = Prior + the sum of every layer's LogDet, summed in float64
// (so it differs from Flow.LogProb's float32 sum by rounding).
type Trace struct {
	LogProb []float64
	// Prior is log N(z; 0, I) of the latent z.
	Prior []float64
	// LatentNorm is the Euclidean norm of z.
	LatentNorm []float64
	// Layers holds each step's log-det in forward order.
	Layers []LayerLogDet
}

// LayerLogDet is one step's log-det per example.
type LayerLogDet struct {
	Name   string
	LogDet []float64
}

// Trace computes log p(x) and its parts for the batch x in a
// gradient-free pass (put the model's batch norms in evaluation mode
// first, as for scoring).
func (f Flow) Trace(x *tensor.Tensor) Trace {
	p := tensor.GradFree()
	defer p.Close()
	n := x.Shape[0]
	var tr Trace
	z, _ := ForwardTrace(f.Bijector, p.Input(x), "", func(name string, l *tensor.Tensor) {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(l.Data[i])
		}
		tr.Layers = append(tr.Layers, LayerLogDet{Name: name, LogDet: v})
	})
	prior := tensor.StdNormalLogProb(z)
	d := len(z.Data) / n
	tr.LogProb, tr.Prior, tr.LatentNorm = make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		tr.Prior[i] = float64(prior.Data[i])
		tr.LogProb[i] = tr.Prior[i]
		for _, l := range tr.Layers {
			tr.LogProb[i] += l.LogDet[i]
		}
		var s float64
		for _, v := range z.Data[i*d : (i+1)*d] {
			s += float64(v) * float64(v)
		}
		tr.LatentNorm[i] = math.Sqrt(s)
	}
	return tr
}
