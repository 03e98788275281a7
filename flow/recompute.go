package flow

import (
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Recompute is a Chain whose backward pass stores no activations: Forward
// keeps only the chain's output, and the backward pass walks the steps in
// reverse, recovering each step's input from its output with the step's
// Inverse, re-running the step with gradients, and back-propagating through
// that one step. Activation memory therefore does not grow with the
// chain's depth (the invertible-network trick of Gomez et al. 2017), at the
// cost of one inverse and one extra forward pass per step.
//
// Values and log-dets equal Chain's. Gradients equal the stored-activation
// path up to the float32 error of reconstructing inputs by Inverse.
// Mode, when not nil, is the model's batch-norm mode: it is frozen during
// recomputation so running statistics are updated once per step, in
// Forward, exactly as without recomputation.
type Recompute struct {
	Chain
	Mode *nn.Mode
}

// Forward implements Bijector.
func (r *Recompute) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	params := nn.Params(r.Chain)
	if len(r.Chain) == 0 || !tensor.AnyRequiresGrad(append(params, x)...) {
		return r.Chain.Forward(x)
	}
	fp := tensor.PassOf(x).Child(false)
	z0, ld0 := r.Chain.Forward(fp.Input(x))
	n := x.Shape[0]
	d := len(z0.Data)
	pair := make([]float32, d+n)
	copy(pair, z0.Data)
	copy(pair[d:], ld0.Data)
	zShape := z0.Shape
	fp.Close()
	inputs := append([]*tensor.Tensor{x}, params...)
	var out *tensor.Tensor
	out = tensor.Custom([]int{d + n}, pair, inputs, func(gy []float32) {
		r.backward(x, out.Data[:d], zShape, gy[:d], gy[d:])
	})
	z := tensor.Reshape(tensor.Slice(out, 0, d), zShape...)
	ld := tensor.Slice(out, d, d+n)
	return z, ld
}

// backward back-propagates output gradients gz (of z, shape zShape) and gld
// (of the summed log-det) through the chain, reconstructing inputs. Each
// step's input is reconstructed in a gradient-free pass, kept in hold
// until the step before has used it, and the step re-run with recording
// in a pass of its own.
func (r *Recompute) backward(x *tensor.Tensor, zData []float32, zShape []int, gz, gld []float32) {
	if r.Mode != nil {
		frozen := r.Mode.Frozen
		r.Mode.Frozen = true
		defer func() { r.Mode.Frozen = frozen }()
	}
	outer := tensor.PassOf(x)
	hold := outer.Child(false)
	defer hold.Close()
	z := hold.FromData(append([]float32(nil), zData...), zShape...)
	g := tensor.FromData(append([]float32(nil), gz...), zShape...)
	gl := tensor.FromData(append([]float32(nil), gld...), len(gld))
	for i := len(r.Chain) - 1; i >= 0; i-- {
		step := r.Chain[i]
		var xi *tensor.Tensor
		if i == 0 {
			xi = tensor.FromData(x.Data, x.Shape...) // the chain's own input is still held
		} else {
			ip := hold.Child(false)
			xi, _ = step.Inverse(ip.Input(z))
			ip.Close(xi)
		}
		rp := outer.Child(true)
		xg := rp.FromData(append([]float32(nil), xi.Data...), xi.Shape...).SetRequiresGrad(true)
		zz, ll := step.Forward(xg)
		loss := tensor.Add(tensor.Sum(tensor.Mul(zz, g)), tensor.Sum(tensor.Mul(ll, gl)))
		tensor.Backward(loss)
		rp.Close()
		tensor.Done(z)
		z, g = xi, tensor.FromData(xg.Grad, xi.Shape...)
	}
	tensor.AccumGrad(x, g.Data)
}
