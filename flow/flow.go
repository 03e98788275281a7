package flow

import (
	"fmt"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Bijector is an invertible map with a tractable log-Jacobian-determinant.
type Bijector interface {
	// Forward maps data x to latent z; logDet is log|det dz/dx| per example.
	Forward(x *tensor.Tensor) (z, logDet *tensor.Tensor)
	// Inverse maps z to x; logDet is log|det dx/dz| per example.
	Inverse(z *tensor.Tensor) (x, logDet *tensor.Tensor)
	nn.Module
}

// Chain composes bijectors: Forward applies Steps[0] first.
type Chain []Bijector

// Forward implements Bijector.
func (c Chain) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	var total *tensor.Tensor
	in := x
	for _, b := range c {
		z, ld := b.Forward(x)
		if x != in && x != z {
			tensor.Done(x)
		}
		x = z
		total = addLogDet(total, ld)
	}
	return x, orZero(total, x)
}

// Inverse implements Bijector.
func (c Chain) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	var total *tensor.Tensor
	in := z
	for i := len(c) - 1; i >= 0; i-- {
		x, ld := c[i].Inverse(z)
		if z != in && z != x {
			tensor.Done(z)
		}
		z = x
		total = addLogDet(total, ld)
	}
	return z, orZero(total, z)
}

// Visit implements nn.Module, naming step i "i".
func (c Chain) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	for i, b := range c {
		b.Visit(nn.Join(prefix, fmt.Sprint(i)), fn)
	}
}

func addLogDet(total, ld *tensor.Tensor) *tensor.Tensor {
	if total == nil {
		return ld
	}
	return tensor.Add(total, ld)
}

// Done is tensor.Done: it lets callers of this package release
// intermediates in gradient-free passes.
var Done = tensor.Done

func orZero(ld, x *tensor.Tensor) *tensor.Tensor {
	if ld == nil {
		return tensor.New(x.Shape[0])
	}
	return ld
}

// Flow is a normalizing flow with a standard normal base distribution:
// log p(x) = log N(z; 0, I) + logDet with z, logDet = Bijector.Forward(x).
type Flow struct {
	Bijector
}

// LogProb returns log p(x) per example, shape [N], in nats.
func (f Flow) LogProb(x *tensor.Tensor) *tensor.Tensor {
	z, ld := f.Forward(x)
	return tensor.Add(tensor.StdNormalLogProb(z), ld)
}

// Sample draws n examples by inverting standard normal latents of the
// given per-example shape, scaled by temperature (1 for the model's own
// distribution).
func (f Flow) Sample(rng *tensor.RNG, n int, latentShape []int, temperature float64) *tensor.Tensor {
	z := tensor.New(append([]int{n}, latentShape...)...)
	rng.Normal(z.Data, 0, temperature)
	x, _ := f.Inverse(z)
	return x
}
