package bijector

import (
	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// ForwardTrace implements flow.Traced: Forward, reporting the log-dets of
// the steps ("steps...") and of the next scale ("next...").
func (m *MultiScale) ForwardTrace(x *tensor.Tensor, prefix string, visit func(string, *tensor.Tensor)) (*tensor.Tensor, *tensor.Tensor) {
	return m.forward(x, func(b flow.Bijector, x *tensor.Tensor, name string) (*tensor.Tensor, *tensor.Tensor) {
		return flow.ForwardTrace(b, x, nn.Join(prefix, name), visit)
	})
}
