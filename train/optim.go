package train

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/tensor"
)

// Optimizer updates parameters from their accumulated gradients.
type Optimizer interface {
	// Step applies one update to params (skipping those without a gradient)
	// with learning rate lr.
	Step(params []*tensor.Tensor, lr float64)
	// State and SetState save and restore the step count and moments, so
	// resumed training continues exactly (see OptimizerState).
	State() OptimizerState
	SetState(s OptimizerState, params []*tensor.Tensor) error
}

// Adam is Kingma & Ba's optimiser with PyTorch's conventions: bias-corrected
// moments, eps added to the square root. WeightDecay adds wd*θ to the
// gradient (L2, PyTorch's Adam weight_decay) unless Decoupled, which
// instead shrinks θ by lr*wd each step (AdamW, Loshchilov & Hutter).
type Adam struct {
	Beta1, Beta2, Eps float64
	WeightDecay       float64
	Decoupled         bool
	// Decay, when not nil, says for each parameter of Step (by position)
	// whether WeightDecay applies to it, as PyTorch's parameter groups
	// with and without weight_decay do; nil applies it to all. It is not
	// part of the saved state.
	Decay []bool

	step int
	m, v [][]float32
}

// NewAdam returns Adam with betas (0.9, 0.999), eps 1e-8 and the given
// weight decay (coupled L2).
func NewAdam(weightDecay float64) *Adam {
	return &Adam{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay}
}

// NewAdamW returns Adam with decoupled weight decay.
func NewAdamW(weightDecay float64) *Adam {
	a := NewAdam(weightDecay)
	a.Decoupled = true
	return a
}

func (a *Adam) init(params []*tensor.Tensor) {
	if a.m != nil {
		return
	}
	a.m = make([][]float32, len(params))
	a.v = make([][]float32, len(params))
	for i, p := range params {
		a.m[i] = make([]float32, len(p.Data))
		a.v[i] = make([]float32, len(p.Data))
	}
}

// Step implements Optimizer.
func (a *Adam) Step(params []*tensor.Tensor, lr float64) {
	a.init(params)
	a.step++
	bc1 := 1 - math.Pow(a.Beta1, float64(a.step))
	bc2 := 1 - math.Pow(a.Beta2, float64(a.step))
	stepSize := float32(lr / bc1)
	b1, b2 := float32(a.Beta1), float32(a.Beta2)
	invSqrtBC2 := float32(1 / math.Sqrt(bc2))
	eps := float32(a.Eps)
	wd := float32(a.WeightDecay)
	for i, p := range params {
		if p.Grad == nil {
			continue
		}
		m, v, g, x := a.m[i], a.v[i], p.Grad, p.Data
		wd := wd
		if !decays(a.Decay, i) {
			wd = 0
		}
		if a.Decoupled && wd != 0 {
			shrink := 1 - float32(lr)*wd
			for j := range x {
				x[j] *= shrink
			}
		}
		for j := range x {
			gj := g[j]
			if !a.Decoupled {
				gj += wd * x[j]
			}
			m[j] = b1*m[j] + (1-b1)*gj
			v[j] = b2*v[j] + (1-b2)*gj*gj
			x[j] -= stepSize * m[j] / (float32(math.Sqrt(float64(v[j])))*invSqrtBC2 + eps)
		}
	}
}

// decays reports whether weight decay applies to parameter i under mask.
func decays(mask []bool, i int) bool { return mask == nil || mask[i] }

// RMSprop is Hinton's optimiser with PyTorch's conventions
// (v = alpha*v + (1-alpha)*g^2, θ -= lr*g/(sqrt(v)+eps)), as used for the
// paper's Glow models.
type RMSprop struct {
	Alpha, Eps  float64
	WeightDecay float64
	// Decay selects the parameters WeightDecay applies to, as Adam.Decay.
	Decay []bool

	step int
	v    [][]float32
}

// NewRMSprop returns RMSprop with alpha 0.99 and eps 1e-8.
func NewRMSprop(weightDecay float64) *RMSprop {
	return &RMSprop{Alpha: 0.99, Eps: 1e-8, WeightDecay: weightDecay}
}

// Step implements Optimizer.
func (r *RMSprop) Step(params []*tensor.Tensor, lr float64) {
	if r.v == nil {
		r.v = make([][]float32, len(params))
		for i, p := range params {
			r.v[i] = make([]float32, len(p.Data))
		}
	}
	r.step++
	al, eps, wd := float32(r.Alpha), float32(r.Eps), float32(r.WeightDecay)
	for i, p := range params {
		if p.Grad == nil {
			continue
		}
		v, g, x := r.v[i], p.Grad, p.Data
		wd := wd
		if !decays(r.Decay, i) {
			wd = 0
		}
		for j := range x {
			gj := g[j] + wd*x[j]
			v[j] = al*v[j] + (1-al)*gj*gj
			x[j] -= float32(lr) * gj / (float32(math.Sqrt(float64(v[j]))) + eps)
		}
	}
}

// NewOptimizer returns the optimiser named adam, adamw or rmsprop.
func NewOptimizer(name string, weightDecay float64) (Optimizer, error) {
	switch name {
	case "", "adam":
		return NewAdam(weightDecay), nil
	case "adamw":
		return NewAdamW(weightDecay), nil
	case "rmsprop":
		return NewRMSprop(weightDecay), nil
	}
	return nil, fmt.Errorf("unknown optimizer %q (want adam, adamw or rmsprop)", name)
}

// SetDecay sets the Decay mask of an optimiser of this package (Adam,
// RMSprop); other optimisers are left alone.
func SetDecay(o Optimizer, mask []bool) {
	switch o := o.(type) {
	case *Adam:
		o.Decay = mask
	case *RMSprop:
		o.Decay = mask
	}
}

// ClipGradNorm scales the gradients of params so their global L2 norm is
// at most maxNorm (no clipping when maxNorm <= 0) and returns the norm
// before clipping, accumulated in float64.
func ClipGradNorm(params []*tensor.Tensor, maxNorm float64) float64 {
	var sq float64
	for _, p := range params {
		for _, g := range p.Grad {
			sq += float64(g) * float64(g)
		}
	}
	norm := math.Sqrt(sq)
	if maxNorm > 0 && norm > maxNorm {
		s := float32(maxNorm / (norm + 1e-6))
		for _, p := range params {
			for j := range p.Grad {
				p.Grad[j] *= s
			}
		}
	}
	return norm
}

// ClipGradNormGroups clips the gradients of two groups of params
// separately, each to a norm of at most maxNorm: those with group[i] set
// and the others (as the reference code clips each of its parameter
// groups). A nil group makes one group of all. It returns the norm of all
// the gradients before clipping.
func ClipGradNormGroups(params []*tensor.Tensor, group []bool, maxNorm float64) float64 {
	if group == nil {
		return ClipGradNorm(params, maxNorm)
	}
	var in, out []*tensor.Tensor
	for i, p := range params {
		if group[i] {
			in = append(in, p)
		} else {
			out = append(out, p)
		}
	}
	a, b := ClipGradNorm(in, maxNorm), ClipGradNorm(out, maxNorm)
	return math.Sqrt(a*a + b*b)
}
