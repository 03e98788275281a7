package bijector

import (
	"fmt"

	"github.com/flowood/flowood/tensor"
)

// Reshape changes the per-example shape of its input from In to Out (the
// same number of values, in the same row-major order): Flatten is
// Reshape{In: [H, W, C], Out: [H·W·C]}. Its output shares its input's
// data (a view), so a Chain must not recycle the input while the output
// lives — the engine's reference-counted buffers see to that. A
// permutation of nothing: log-det 0.
type Reshape struct {
	In, Out []int
}

// Forward implements flow.Bijector.
func (r Reshape) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	return r.apply(x, r.In, r.Out), tensor.New(x.Shape[0])
}

// Inverse implements flow.Bijector.
func (r Reshape) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	return r.apply(z, r.Out, r.In), tensor.New(z.Shape[0])
}

func (r Reshape) apply(x *tensor.Tensor, from, to []int) *tensor.Tensor {
	if !tensor.SameShape(x.Shape[1:], from) || tensor.Numel(from) != tensor.Numel(to) {
		panic(fmt.Sprintf("bijector: Reshape %v -> %v of input %v", r.In, r.Out, x.Shape))
	}
	return tensor.Reshape(x, append([]int{x.Shape[0]}, to...)...)
}

// Visit implements nn.Module; Reshape holds no tensors.
func (Reshape) Visit(string, func(string, *tensor.Tensor, bool)) {}
