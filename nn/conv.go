package nn

import (
	"math"

	"github.com/flowood/flowood/tensor"
)

// Conv2D is a stride-1 2-D convolution of NHWC images with "same" padding
// for odd kernels: y = conv(x, K) + B with the kernel K of shape
// [KH, KW, Cin, Cout]. Without G the kernel is W; with G (shape [Cout])
// the convolution is weight-normalised, K = WeightNorm(W, G) = G ⊙ W/‖W‖
// per output channel, as the reference RealNVP's WNConv2d.
type Conv2D struct {
	W, B *tensor.Tensor // B is nil without bias
	// G, when not nil, is the gain of weight normalisation; W is then the
	// direction v. Checkpoints name W "weight_v" and G "weight_g" then,
	// "weight" otherwise.
	G   *tensor.Tensor
	Pad int
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

// NewWNConv2D returns a weight-normalised k x k convolution initialised
// as torch.nn.utils.weight_norm leaves a PyTorch convolution: the
// direction W is drawn as NewConv2D draws weights and the gain G is ‖W‖
// per output channel, so the kernel starts as NewConv2D's. zeroGain sets
// G to zero instead (the kernel is then zero, but W keeps a direction, so
// the gradient of G is not zero); zeroBias sets the bias to zero.
func NewWNConv2D(rng *tensor.RNG, k, cin, cout int, bias, zeroGain, zeroBias bool) *Conv2D {
	c := NewConv2D(rng, k, cin, cout, bias, false)
	c.G = tensor.Param(cout)
	if !zeroGain {
		rows := k * k * cin
		for o := 0; o < cout; o++ {
			var sq float64
			for r := 0; r < rows; r++ {
				v := float64(c.W.Data[r*cout+o])
				sq += v * v
			}
			c.G.Data[o] = float32(math.Sqrt(sq))
		}
	}
	if zeroBias && c.B != nil {
		clear(c.B.Data)
	}
	return c
}

// Kernel returns the kernel of a convolution of x: W, or WeightNorm(W,
// G) with a gain, computed in x's pass (once per pass where the pass
// caches weights: tensor.Pass.Derived). A kernel other than W is an
// intermediate the caller may recycle (tensor.Done) once the convolution
// has used it.
func (c *Conv2D) Kernel(x *tensor.Tensor) *tensor.Tensor {
	if c.G == nil {
		return c.W
	}
	return tensor.PassOf(x).Derived(c, func(p *tensor.Pass) *tensor.Tensor {
		return WeightNorm(p.Input(c.W), p.Input(c.G))
	})
}

// doneKernel recycles a kernel returned by Kernel in gradient-free passes.
func (c *Conv2D) doneKernel(k *tensor.Tensor) {
	if k != c.W {
		tensor.Done(k)
	}
}

// Forward applies the convolution.
func (c *Conv2D) Forward(x *tensor.Tensor) *tensor.Tensor {
	k := c.Kernel(x)
	y := tensor.Conv2DBias(x, k, c.B, c.Pad)
	c.doneKernel(k)
	return y
}

// Visit implements Module.
func (c *Conv2D) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	if c.G != nil {
		fn(Join(prefix, "weight_g"), c.G, true)
		fn(Join(prefix, "weight_v"), c.W, true)
	} else {
		fn(Join(prefix, "weight"), c.W, true)
	}
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
