package bijector

import (
	"fmt"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// SplitPrior is Glow's learned conditional prior on the channels a scale
// factors out, written as a bijector so that the base distribution stays
// a standard normal: on [N, H, W, C] with the first C/2 channels z2 (those
// MultiScale factors out) and the others z1 (kept),
//
//	forward:  z2' = (z2 - mu) ⊙ exp(-logsigma),  z1 unchanged,
//	          (mu, logsigma) = Net(z1)
//	inverse:  z2 = z2' ⊙ exp(logsigma) + mu
//	log-det:  -Σ logsigma
//
// so that N(z2'; 0, I) with the log-det is the density N(z2; mu,
// exp(logsigma)²) of Glow's learned prior. Placed as the last step of a
// scale, it sees z1 before the following scales transform it, as Glow's
// split does; sampling draws z2' from N(0, I) once and inverting a latent
// reproduces its input (nothing is resampled). Net maps C/2 channels to C
// (mu first, then logsigma) and starts at zero (the standard normal prior).
type SplitPrior struct {
	Net STNet
}

// Forward implements flow.Bijector.
func (sp *SplitPrior) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	z2, z1 := tensor.Split(x, x.Dim(-1)/2)
	mu, ls := sp.params(z1)
	d := tensor.Sub(z2, mu)
	nls := tensor.Neg(ls)
	e := tensor.Exp(nls)
	y := tensor.Mul(d, e)
	z := tensor.Concat(y, z1)
	ld := tensor.SumPerExample(nls)
	tensor.Done(z2, z1, mu, ls, d, nls, e, y)
	return z, ld
}

// Inverse implements flow.Bijector.
func (sp *SplitPrior) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	y, z1 := tensor.Split(z, z.Dim(-1)/2)
	mu, ls := sp.params(z1)
	e := tensor.Exp(ls)
	ye := tensor.Mul(y, e)
	z2 := tensor.Add(ye, mu)
	x := tensor.Concat(z2, z1)
	ld := tensor.SumPerExample(ls)
	tensor.Done(y, z1, mu, ls, e, ye, z2)
	return x, ld
}

func (sp *SplitPrior) params(z1 *tensor.Tensor) (mu, logSigma *tensor.Tensor) {
	out := sp.Net.Forward(z1)
	if out.Dim(-1) != 2*z1.Dim(-1) {
		panic(fmt.Sprintf("bijector: split prior network output %v for %d kept channels", out.Shape, z1.Dim(-1)))
	}
	mu, logSigma = tensor.Split(out, z1.Dim(-1))
	tensor.Done(out)
	return mu, logSigma
}

// Visit implements nn.Module.
func (sp *SplitPrior) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	sp.Net.Visit(nn.Join(prefix, "prior"), fn)
}
