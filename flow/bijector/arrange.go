package bijector

import (
	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/tensor"
)

// Arrange implements flow.Rearranger: space to depth.
func (Squeeze) Arrange(x *tensor.Tensor) *tensor.Tensor { return tensor.Squeeze2x2(x) }

// Arrange implements flow.Rearranger: the output's shape.
func (r Reshape) Arrange(x *tensor.Tensor) *tensor.Tensor { return r.apply(x, r.In, r.Out) }

// Arrange implements flow.Rearranger: the steps' rearrangements, then
// the first half of the channels flattened and the rest arranged by the
// next scale, as Forward lays out the latent.
func (m *MultiScale) Arrange(x *tensor.Tensor) *tensor.Tensor {
	y := flow.Arrange(m.Steps, x)
	n := x.Shape[0]
	if m.Next == nil {
		return tensor.Reshape(y, n, -1)
	}
	out, keep := tensor.Split(y, m.Shape[2]/2)
	return tensor.Concat(tensor.Reshape(out, n, -1), tensor.Reshape(flow.Arrange(m.Next, keep), n, -1))
}

// Unarrange implements flow.Rearranger: depth to space.
func (Squeeze) Unarrange(z *tensor.Tensor) *tensor.Tensor { return tensor.Unsqueeze2x2(z) }

// Unarrange implements flow.Rearranger: the input's shape.
func (r Reshape) Unarrange(z *tensor.Tensor) *tensor.Tensor { return r.apply(z, r.Out, r.In) }

// Unarrange implements flow.Rearranger: the flat latent back to the
// input's layout, the factored-out channels and the next scale's part
// (itself unarranged) joined as in Inverse, then the steps' own
// rearrangements undone.
func (m *MultiScale) Unarrange(z *tensor.Tensor) *tensor.Tensor {
	n := z.Shape[0]
	h, w, c := m.Shape[0], m.Shape[1], m.Shape[2]
	z = tensor.Reshape(z, n, -1)
	if m.Next == nil {
		return flow.Unarrange(m.Steps, tensor.Reshape(z, n, h, w, c))
	}
	d := h * w * (c / 2)
	out := tensor.Reshape(tensor.Slice(z, 0, d), n, h, w, c/2)
	keep := flow.Unarrange(m.Next, tensor.Slice(z, d, z.Dim(-1)))
	keep = tensor.Reshape(keep, n, h, w, c-c/2)
	return flow.Unarrange(m.Steps, tensor.Concat(out, keep))
}
