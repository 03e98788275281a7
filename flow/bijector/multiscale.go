package bijector

import (
	"fmt"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// MultiScale is one scale of RealNVP's multi-scale architecture: Steps
// transform the input to y of per-example shape Shape = [H, W, C]; then the
// first C/2 channels of y are factored out (copied to the latent) and Next
// transforms the rest. The latent is flat, [N, D]:
//
//	forward:  z = concat(flatten(y[..., :C/2]), Next(y[..., C/2:])),  y = Steps(x)
//	log-det:  logDet(Steps) + logDet(Next)
//
// With Next nil (the last scale) nothing is factored out and z = flatten(y).
type MultiScale struct {
	Steps flow.Bijector
	Next  flow.Bijector
	Shape [3]int
}

// Forward implements flow.Bijector.
func (m *MultiScale) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	y, ld := m.Steps.Forward(x)
	n := x.Shape[0]
	if y.Shape[1] != m.Shape[0] || y.Shape[2] != m.Shape[1] || y.Shape[3] != m.Shape[2] {
		panic(fmt.Sprintf("bijector: MultiScale steps gave %v, want [N %v]", y.Shape, m.Shape))
	}
	if m.Next == nil {
		return tensor.Reshape(y, n, -1), ld
	}
	out, keep := tensor.Split(y, m.Shape[2]/2)
	tensor.Done(y)
	zn, ld2 := m.Next.Forward(keep)
	z := tensor.Concat(tensor.Reshape(out, n, -1), tensor.Reshape(zn, n, -1))
	tensor.Done(out, keep, zn)
	return z, tensor.Add(ld, ld2)
}

// Inverse implements flow.Bijector; z is the flat latent of Forward.
func (m *MultiScale) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	n := z.Shape[0]
	h, w, c := m.Shape[0], m.Shape[1], m.Shape[2]
	z = tensor.Reshape(z, n, -1)
	if m.Next == nil {
		return m.Steps.Inverse(tensor.Reshape(z, n, h, w, c))
	}
	d := h * w * (c / 2)
	out := tensor.Reshape(tensor.Slice(z, 0, d), n, h, w, c/2)
	keep, ld2 := m.Next.Inverse(tensor.Slice(z, d, z.Dim(-1)))
	keep = tensor.Reshape(keep, n, h, w, c-c/2)
	x, ld := m.Steps.Inverse(tensor.Concat(out, keep))
	return x, tensor.Add(ld, ld2)
}

// Visit implements nn.Module.
func (m *MultiScale) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	m.Steps.Visit(nn.Join(prefix, "steps"), fn)
	if m.Next != nil {
		m.Next.Visit(nn.Join(prefix, "next"), fn)
	}
}
