package bijector

import "github.com/flowood/flowood/tensor"

// Squeeze is the space-to-depth reshuffle of RealNVP: forward
// [N, H, W, C] -> [N, H/2, W/2, 4C] (tensor.Squeeze2x2), inverse undoes it;
// a permutation, so log-det 0.
type Squeeze struct{}

// Forward implements flow.Bijector.
func (Squeeze) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	return tensor.Squeeze2x2(x), tensor.New(x.Shape[0])
}

// Inverse implements flow.Bijector.
func (Squeeze) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	return tensor.Unsqueeze2x2(z), tensor.New(z.Shape[0])
}

// Visit implements nn.Module; Squeeze holds no tensors.
func (Squeeze) Visit(string, func(string, *tensor.Tensor, bool)) {}
