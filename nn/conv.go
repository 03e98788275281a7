package nn

import (
	"math"

	"github.com/flowood/flowood/tensor"
)

// Conv2D is a stride-1 2-D convolution of NHWC images with "same" padding
// for odd kernels: y = conv(x, W) + B, W of shape [K, K, Cin, Cout].
type Conv2D struct {
	W, B *tensor.Tensor // B is nil without bias
	Pad  int
}

// NewConv2D returns a k x k convolution from cin to cout channels,
// initialised like PyTorch's default (weights and bias uniform in
// ±1/sqrt(k*k*cin)). With zero set, weights and bias start at zero (the
// last layer of an st-network, so a coupling starts as the identity).
func NewConv2D(rng *tensor.RNG, k, cin, cout int, bias, zero bool) *Conv2D {
	c := &Conv2D{W: tensor.Param(k, k, cin, cout), Pad: k / 2}
	bound := 1 / math.Sqrt(float64(k*k*cin))
	if !zero {
		rng.Uniform(c.W.Data, -bound, bound)
	}
	if bias {
		c.B = tensor.Param(cout)
		if !zero {
			rng.Uniform(c.B.Data, -bound, bound)
		}
	}
	return c
}

// Forward applies the convolution.
func (c *Conv2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.Conv2DBias(x, c.W, c.B, c.Pad)
}

// Visit implements Module.
func (c *Conv2D) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	fn(Join(prefix, "weight"), c.W, true)
	if c.B != nil {
		fn(Join(prefix, "bias"), c.B, true)
	}
}

// Linear is y = x·W + B with W of shape [In, Out].
type Linear struct {
	W, B *tensor.Tensor
}

// NewLinear returns a linear layer initialised like PyTorch's default; with
// zero set it starts at zero.
func NewLinear(rng *tensor.RNG, in, out int, zero bool) *Linear {
	l := &Linear{W: tensor.Param(in, out), B: tensor.Param(out)}
	if !zero {
		bound := 1 / math.Sqrt(float64(in))
		rng.Uniform(l.W.Data, -bound, bound)
		rng.Uniform(l.B.Data, -bound, bound)
	}
	return l
}

// Forward applies the layer to x of shape [..., In].
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	y := tensor.MatMul(x, l.W)
	yb := tensor.AddChannel(y, l.B)
	tensor.Done(y)
	return yb
}

// Visit implements Module.
func (l *Linear) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	fn(Join(prefix, "weight"), l.W, true)
	fn(Join(prefix, "bias"), l.B, true)
}
