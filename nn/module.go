// Package nn holds layers with parameters built on package tensor: 2-D
// convolutions, batch normalisation, linear layers, and the ResNet used as
// the st-network of RealNVP's coupling layers.
//
// Every layer is a Module: it names its tensors, so checkpoints and
// optimisers can find them. Layers never allocate during Forward beyond the
// tensors the engine returns.
package nn

import "github.com/flowood/flowood/tensor"

// Module is anything that holds tensors.
type Module interface {
	// Visit calls fn for every tensor the module holds, with a dotted name
	// under prefix. trainable is false for buffers (running statistics).
	Visit(prefix string, fn func(name string, t *tensor.Tensor, trainable bool))
}

// Named is a tensor with its checkpoint name.
type Named struct {
	Name      string
	T         *tensor.Tensor
	Trainable bool
}

// Tensors returns the tensors of m in visiting order.
func Tensors(m Module) []Named {
	var out []Named
	m.Visit("", func(name string, t *tensor.Tensor, trainable bool) {
		out = append(out, Named{name, t, trainable})
	})
	return out
}

// Params returns the trainable tensors of m.
func Params(m Module) []*tensor.Tensor {
	var out []*tensor.Tensor
	m.Visit("", func(_ string, t *tensor.Tensor, trainable bool) {
		if trainable {
			out = append(out, t)
		}
	})
	return out
}

// Join returns prefix.name, or name when prefix is empty.
func Join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// Mode is shared by all batch-norm layers of a model and says how they
// normalise. The zero value is evaluation mode.
type Mode struct {
	// Train selects batch statistics instead of running statistics.
	Train bool
	// Frozen keeps running statistics unchanged in Train mode (used to score
	// with batch statistics, as Song et al. 2019 do, without touching the
	// model).
	Frozen bool
}
