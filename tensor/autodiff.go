package tensor

import (
	"fmt"

	"github.com/flowood/flowood/kernels"
)

// node is the record an operation leaves on its output: the inputs and the
// closure that adds the output's gradient into theirs.
type node struct {
	inputs   []*Tensor
	backward func()
}

// record attaches a backward closure to out when gradients are enabled and
// any input requires them; it returns whether it did, so operations can
// skip saving state for the backward pass.
//
// out joins the pass of its inputs if it has none yet.
func record(out *Tensor, backward func(), inputs ...*Tensor) bool {
	if out.pass == nil {
		out.pass = passOf(inputs...)
	}
	if !out.pass.Grad() {
		return false
	}
	for _, in := range inputs {
		if in != nil && in.requiresGrad {
			out.requiresGrad = true
			out.node = &node{inputs: inputs, backward: backward}
			return true
		}
	}
	return false
}

// needs reports whether the gradient of t must be computed.
func needs(t *Tensor) bool { return t != nil && t.requiresGrad }

// grad returns t.Grad, allocating zeros on first use.
func (t *Tensor) grad() []float32 {
	if t.Grad == nil {
		if t.node != nil {
			t.Grad = allocZero(len(t.Data))
		} else {
			t.Grad = make([]float32, len(t.Data))
		}
	}
	return t.Grad
}

// gradOut returns t's gradient buffer for a backward pass that writes all
// of it, and whether the buffer is new. A new buffer holds unspecified
// values: the caller must store into it instead of adding, which saves
// clearing it and reading it back.
func (t *Tensor) gradOut() (g []float32, fresh bool) {
	if t.Grad != nil {
		return t.Grad, false
	}
	if t.node != nil {
		t.Grad = alloc(len(t.Data))
	} else {
		t.Grad = make([]float32, len(t.Data))
	}
	return t.Grad, true
}

// addGrad adds g to t's gradient in parallel, copying it when t has none
// yet.
func addGrad(t *Tensor, g []float32) {
	dst, fresh := t.gradOut()
	g = g[:len(dst)]
	t.pass.each(len(dst), func(lo, hi int) {
		if fresh {
			copy(dst[lo:hi], g[lo:hi])
		} else {
			kernels.AddTo(dst[lo:hi], g[lo:hi])
		}
	})
}

// passGrad adds out's gradient into t's, as addGrad does, but hands t
// out's buffer instead when t has no gradient yet and both are
// intermediates (whose gradient buffers come from the pool and are
// recycled by Backward): the output of an operation whose input gradient
// is its output gradient (a sum, a bias, a reshape) then costs no pass
// over memory. out's gradient must not be used afterwards.
func passGrad(t, out *Tensor) {
	if t.Grad == nil && t.node != nil && out.node != nil && len(out.Grad) == len(t.Data) {
		t.Grad, out.Grad = out.Grad, nil
		return
	}
	addGrad(t, out.Grad)
}

// Backward computes d loss / d t for every tensor t that loss depends on and
// that requires gradients, accumulating into t.Grad. loss must have one
// element.
//
// Backward consumes the graph: afterwards every intermediate tensor (one
// computed from a tensor requiring gradients) other than loss has nil Data
// and Grad, its buffers recycled for later operations (a buffer that a
// tensor outside the graph still shares is left to it). Read intermediate
// values before calling Backward, or Clone them.
func Backward(loss *Tensor) {
	if len(loss.Data) != 1 {
		panic(fmt.Sprintf("tensor: Backward of non-scalar shape %v", loss.Shape))
	}
	if !loss.requiresGrad {
		panic("tensor: Backward of a tensor that does not require gradients")
	}
	order := topoOrder(loss)
	loss.grad()[0] = 1
	for i := len(order) - 1; i >= 0; i-- {
		t := order[i]
		if t.Grad != nil {
			t.node.backward()
		}
		t.node = nil // release saved state
		if t == loss {
			continue
		}
		release(t.Grad)
		t.Grad = nil
		// views (Reshape) let go too: the buffer is recycled once
		// nothing outside the graph holds it
		t.drop()
	}
}

// topoOrder returns the tensors with nodes reachable from root, inputs
// before outputs.
func topoOrder(root *Tensor) []*Tensor {
	var order []*Tensor
	seen := map[*Tensor]bool{}
	type frame struct {
		t *Tensor
		i int
	}
	stack := []frame{{root, 0}}
	seen[root] = true
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.t.node == nil || f.i == len(f.t.node.inputs) {
			if f.t.node != nil {
				order = append(order, f.t)
			}
			stack = stack[:len(stack)-1]
			continue
		}
		in := f.t.node.inputs[f.i]
		f.i++
		if in != nil && in.requiresGrad && !seen[in] {
			seen[in] = true
			stack = append(stack, frame{in, 0})
		}
	}
	return order
}

// Custom returns a tensor of the given shape holding data (which it takes
// ownership of) whose backward pass is the caller's: when gradients are
// enabled and an input requires them, backward is called with the output
// gradient during Backward and must add into the inputs' gradients with
// AccumGrad. It lets composite layers, such as a coupling that recomputes
// its activations, define their own backward pass.
func Custom(shape []int, data []float32, inputs []*Tensor, backward func(gy []float32)) *Tensor {
	out := FromData(data, shape...)
	out.pass = passOf(inputs...)
	record(out, func() { backward(out.Grad) }, inputs...)
	return out
}

// AccumGrad adds g to t's gradient; for use inside a Custom backward.
func AccumGrad(t *Tensor, g []float32) {
	if !t.requiresGrad {
		return
	}
	if len(g) != len(t.Data) {
		panic(fmt.Sprintf("tensor: AccumGrad of %d values into %v", len(g), t.Shape))
	}
	addGrad(t, g)
}

// AnyRequiresGrad reports whether an operation on ts would record: their
// pass records and one of them requires gradients.
func AnyRequiresGrad(ts ...*Tensor) bool {
	if !passOf(ts...).Grad() {
		return false
	}
	for _, t := range ts {
		if t != nil && t.requiresGrad {
			return true
		}
	}
	return false
}
