package train

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// forwardTracer is a model whose forward pass can be replayed one
// bijector at a time (flow.Flow.TraceForward, which realnvp.Model
// inherits).
type forwardTracer interface {
	TraceForward(x *tensor.Tensor, visit func(name string, z, logDet *tensor.Tensor) bool) bool
}

// nonFinite returns the error that stops training at step when the loss
// or the gradient norm of batch u is not finite (what says which: empty
// for the loss). It
// wraps ErrNonFinite and names the culprit: the first bijector (by its checkpoint
// name path) whose output or log-det is not finite when the batch's
// forward pass is rerun gradient-free, one bijector at a time, with the
// batch norms as in the step (batch statistics; the rerun updates their
// running statistics once more, which does not matter: training stops
// and the model in memory is not saved). If the forward pass is finite
// throughout, the non-finite value arose in the backward pass. It also
// names the first parameter of the model that holds a non-finite value,
// if any (running statistics are not looked at: the failed step updated
// them). The latest
// checkpoint on disk is the last good one: nothing is saved after this.
func (r *Run) nonFinite(u *tensor.Tensor, step int, what string) error {
	where := r.locateNonFinite(u)
	if what != "" {
		what += "; "
	}
	return fmt.Errorf("step %d: %s%s: %w (kept the last checkpoint; try a lower --lr)", step, what, where, ErrNonFinite)
}

// locateNonFinite describes where the first non-finite value of a step on
// batch u appears (see nonFinite).
func (r *Run) locateNonFinite(u *tensor.Tensor) string {
	param := ""
	for _, t := range nn.Tensors(r.Model) {
		if !t.Trainable {
			// running statistics: the failed step's forward pass has
			// already updated them with its non-finite values
			continue
		}
		if i := firstNonFinite(t.T.Data); i >= 0 {
			param = fmt.Sprintf("; parameter %s holds %v (at index %d), from an earlier step", t.Name, t.T.Data[i], i)
			break
		}
	}
	tr, ok := r.Model.(forwardTracer)
	if !ok {
		return fmt.Sprintf("the model (%T) cannot replay its forward pass to locate the first non-finite layer%s", r.Model, param)
	}
	p := tensor.GradFree()
	defer p.Close()
	var found string
	tr.TraceForward(p.Input(u), func(name string, z, logDet *tensor.Tensor) bool {
		if i := firstNonFinite(z.Data); i >= 0 {
			found = fmt.Sprintf("first non-finite value in the forward pass: output of layer %s (%v at index %d)", name, z.Data[i], i)
			return true
		}
		if logDet != nil {
			if i := firstNonFinite(logDet.Data); i >= 0 {
				found = fmt.Sprintf("first non-finite value in the forward pass: log-det of layer %s (%v for example %d)", name, logDet.Data[i], i)
				return true
			}
		}
		return false
	})
	if found == "" {
		return "the forward pass of the batch is finite throughout (rerun layer by layer): the non-finite value arose in the loss or the backward pass" + param
	}
	return found + param
}

// firstNonFinite returns the index of the first NaN or infinity in v, or
// -1.
func firstNonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}

// finiteParams returns an error wrapping ErrNonFinite that names the
// first of params holding a NaN or infinity, or nil: the loop saves no
// checkpoint of such a model, so the latest checkpoint stays the last
// good one.
func finiteParams(params []nn.Named) error {
	for _, t := range params {
		if i := firstNonFinite(t.T.Data); i >= 0 {
			return fmt.Errorf("parameter %s holds %v (at index %d): %w; not saved, the checkpoint on disk is the last good one", t.Name, t.T.Data[i], i, ErrNonFinite)
		}
	}
	return nil
}
