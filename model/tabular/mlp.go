package tabular

import (
	"fmt"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// MLP is a fully connected network with ReLU between its layers and none
// after the last: y = L_k(relu(... relu(L_1(x)))).
type MLP struct {
	Layers []*nn.Linear
}

// NewMLP returns an MLP from in to out features through 1 + hidden layers
// of width mid (the reference's Linear(in, mid), ReLU, hidden times
// Linear(mid, mid), ReLU, Linear(mid, out)), initialised like PyTorch's
// nn.Linear; with zeroOut the output layer starts at zero.
func NewMLP(rng *tensor.RNG, in, mid, hidden, out int, zeroOut bool) *MLP {
	m := &MLP{Layers: []*nn.Linear{nn.NewLinear(rng, in, mid, false)}}
	for i := 0; i < hidden; i++ {
		m.Layers = append(m.Layers, nn.NewLinear(rng, mid, mid, false))
	}
	m.Layers = append(m.Layers, nn.NewLinear(rng, mid, out, zeroOut))
	return m
}

// Forward applies the network to x of shape [N, in].
func (m *MLP) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := x
	for i, l := range m.Layers {
		y := l.Forward(h)
		if h != x {
			tensor.Done(h)
		}
		if i < len(m.Layers)-1 {
			r := tensor.Relu(y)
			tensor.Done(y)
			y = r
		}
		h = y
	}
	return h
}

// Visit implements nn.Module, naming layer i "i".
func (m *MLP) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	for i, l := range m.Layers {
		l.Visit(nn.Join(prefix, fmt.Sprint(i)), fn)
	}
}
