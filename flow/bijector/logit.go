package bijector

import (
	"math"

	"github.com/flowood/flowood/tensor"
)

// Logit is RealNVP's preprocessing of dequantised pixels u in [0, 1):
//
//	forward:  z = logit(p),  p = a + (1-2a)u,  a = (1-Constraint)/2
//	inverse:  u = (sigmoid(z) - a)/(1-2a)
//	log-det:  sum_j log(1-2a) - log p_j - log(1-p_j)
//
// With Constraint 0.9 (the reference code's value) p lies in [0.05, 0.95).
type Logit struct {
	Constraint float64
}

func (l Logit) alpha() float64 {
	c := l.Constraint
	if c == 0 {
		c = 0.9
	}
	return (1 - c) / 2
}

// Forward implements flow.Bijector.
func (l Logit) Forward(u *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	a := l.alpha()
	p := tensor.AddScalar(tensor.Scale(u, float32(1-2*a)), float32(a))
	logP := tensor.Log(p)
	log1mP := tensor.Log(tensor.AddScalar(tensor.Neg(p), 1))
	z := tensor.Sub(logP, log1mP)
	d := len(u.Data) / u.Shape[0]
	ld := tensor.AddScalar(tensor.Neg(tensor.SumPerExample(tensor.Add(logP, log1mP))), float32(float64(d)*math.Log(1-2*a)))
	return z, ld
}

// Inverse implements flow.Bijector.
func (l Logit) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	a := l.alpha()
	p := tensor.Sigmoid(z)
	u := tensor.Scale(tensor.AddScalar(p, float32(-a)), float32(1/(1-2*a)))
	// log p + log(1-p) = -softplus(-z) - softplus(z)
	d := len(z.Data) / z.Shape[0]
	sp := tensor.SumPerExample(tensor.Add(tensor.Softplus(z), tensor.Softplus(tensor.Neg(z))))
	return u, tensor.AddScalar(tensor.Neg(sp), float32(-float64(d)*math.Log(1-2*a)))
}

// Visit implements nn.Module; Logit holds no tensors.
func (Logit) Visit(string, func(string, *tensor.Tensor, bool)) {}
