package bijector

import (
	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TraceForward implements flow.Tracer: Forward with Steps and Next traced
// (named "steps" and "next" as Visit names them).
func (m *MultiScale) TraceForward(x *tensor.Tensor, prefix string, visit func(string, *tensor.Tensor, *tensor.Tensor) bool) (*tensor.Tensor, *tensor.Tensor, bool) {
	y, ld, stop := flow.TraceForward(m.Steps, x, nn.Join(prefix, "steps"), visit)
	if stop {
		return nil, nil, true
	}
	n := x.Shape[0]
	if m.Next == nil {
		return tensor.Reshape(y, n, -1), ld, false
	}
	out, keep := tensor.Split(y, m.Shape[2]/2)
	zn, ld2, stop := flow.TraceForward(m.Next, keep, nn.Join(prefix, "next"), visit)
	if stop {
		return nil, nil, true
	}
	z := tensor.Concat(tensor.Reshape(out, n, -1), tensor.Reshape(zn, n, -1))
	return z, tensor.Add(ld, ld2), false
}

// Part implements flow.Parent: "steps" and "next", as TraceForward names
// them.
func (m *MultiScale) Part(name string) flow.Bijector {
	switch name {
	case "steps":
		return m.Steps
	case "next":
		if m.Next != nil {
			return m.Next
		}
	}
	return nil
}
