// Package nn holds layers with parameters built on package tensor: 2-D
// convolutions, batch normalisation, linear layers, and the ResNet used as
// the st-network of RealNVP's coupling layers.
//
// Every layer is a Module: it names its tensors, so checkpoints and
// optimisers can find them. Layers never allocate during Forward beyond the
// tensors the engine returns.
package nn

import (
	"fmt"
	"slices"

	"github.com/flowood/flowood/tensor"
)

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
	// Group, when not nil, synchronises the batch norms of this model,
	// replica Rank, with the other replicas of a data-parallel step
	// (tensor.BatchNormStats.Group).
	Group *tensor.Group
	Rank  int
}

// Share makes every tensor of dst use the data of the tensor of src with
// the same name, so that dst computes with src's parameters and buffers
// and sees every change to them (an optimiser step on src). Gradients
// stay separate. It fails unless the two modules name the same tensors,
// in the same order, with the same shapes.
func Share(dst, src Module) error {
	d, s := Tensors(dst), Tensors(src)
	if len(d) != len(s) {
		return fmt.Errorf("nn: sharing %d tensors with a module of %d", len(d), len(s))
	}
	for i := range d {
		if d[i].Name != s[i].Name || !slices.Equal(d[i].T.Shape, s[i].T.Shape) {
			return fmt.Errorf("nn: tensor %d is %s %v here, %s %v in the module shared", i, d[i].Name, d[i].T.Shape, s[i].Name, s[i].T.Shape)
		}
	}
	for i := range d {
		d[i].T.Data = s[i].T.Data
	}
	return nil
}
