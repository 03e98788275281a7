package bijector

import (
	"fmt"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// GlowCouplingKind selects the map a GlowCoupling applies to its changed
// half.
type GlowCouplingKind string

const (
	// CouplingAffine is the reference code's (flows_ood's CouplingLayer,
	// used by its Glow): s = Scale ⊙ tanh(raw), z = (x + t) ⊙ exp(s).
	CouplingAffine GlowCouplingKind = "affine"
	// CouplingSigmoid is openai/glow's affine coupling:
	// scale = sigmoid(raw + 2), z = (x + t) ⊙ scale.
	CouplingSigmoid GlowCouplingKind = "sigmoid"
	// CouplingAdditive is NICE's additive coupling: z = x + t, log-det 0.
	CouplingAdditive GlowCouplingKind = "additive"
)

// Valid reports whether k names a coupling.
func (k GlowCouplingKind) Valid() bool {
	return k == CouplingAffine || k == CouplingSigmoid || k == CouplingAdditive
}

// GlowCoupling is Glow's channel-wise coupling over C channels: the
// st-network Net sees the first C/2 channels x_id, which pass unchanged,
// and its output (raw scales and shifts t, C channels, or t alone, C/2
// channels, for the additive kind) transforms the other half x_ch:
//
//	affine:    s = Scale ⊙ tanh(raw);        z_ch = (x_ch + t) ⊙ exp(s);   log-det Σ s
//	sigmoid:   s = log sigmoid(raw + 2);      z_ch = (x_ch + t) ⊙ exp(s);   log-det Σ s
//	additive:  z_ch = x_ch + t;                                              log-det 0
//	inverse:   x_ch = z_ch ⊙ exp(-s) - t  (additive: z_ch - t)
//
// The reference (flows_ood) conditions on the second half and changes the
// first; with the learned 1x1 convolution before every coupling this is the
// same family of flows up to a fixed swap of the halves, and with
// MultiScale factoring out the first half the factored-out half is, as in
// the reference, the one the scale's last coupling passed through.
//
// Observe, when set, receives every Forward's s and t (shape of x_ch; s
// is zero for the additive kind) and z_ch, for the paper's
// coupling-layer views, as AffineCoupling.Observe does: on the goroutine
// that called Forward, for the whole batch, valid during the call only.
type GlowCoupling struct {
	Kind    GlowCouplingKind
	Net     STNet
	Scale   *tensor.Tensor // [C/2] for the affine kind, nil otherwise
	Observe func(s, t, z *tensor.Tensor)
}

// NewGlowCoupling returns a coupling of the given kind over c channels.
// net must map c/2 channels to c (c/2 for the additive kind).
func NewGlowCoupling(kind GlowCouplingKind, c int, net STNet) *GlowCoupling {
	if !kind.Valid() {
		panic(fmt.Sprintf("bijector: coupling kind %q", kind))
	}
	if c%2 != 0 {
		panic(fmt.Sprintf("bijector: Glow coupling of %d channels (want an even number)", c))
	}
	g := &GlowCoupling{Kind: kind, Net: net}
	if kind == CouplingAffine {
		g.Scale = tensor.Full(1, c/2).SetRequiresGrad(true)
	}
	return g
}

// st returns log-scales s (nil for the additive kind) and shifts t for
// the conditioning half id.
func (g *GlowCoupling) st(id *tensor.Tensor) (s, t *tensor.Tensor) {
	out := g.Net.Forward(id)
	half := id.Dim(-1)
	if g.Kind == CouplingAdditive {
		if out.Dim(-1) != half {
			panic(fmt.Sprintf("bijector: st-network output %v for an additive coupling of %d changed channels", out.Shape, half))
		}
		return nil, out
	}
	if out.Dim(-1) != 2*half {
		panic(fmt.Sprintf("bijector: st-network output %v for a coupling of %d changed channels", out.Shape, half))
	}
	raw, t := tensor.Split(out, half)
	tensor.Done(out)
	switch g.Kind {
	case CouplingAffine:
		th := tensor.Tanh(raw)
		s = tensor.MulChannel(th, tensor.PassOf(id).Input(g.Scale))
		tensor.Done(th)
	case CouplingSigmoid:
		// log sigmoid(v) = -softplus(-v)
		sh := tensor.AddScalar(raw, 2)
		nsh := tensor.Neg(sh)
		sp := tensor.Softplus(nsh)
		s = tensor.Neg(sp)
		tensor.Done(sh, nsh, sp)
	}
	tensor.Done(raw)
	return s, t
}

// Forward implements flow.Bijector.
func (g *GlowCoupling) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	id, ch := tensor.Split(x, x.Dim(-1)/2)
	s, t := g.st(id)
	var zc, ld *tensor.Tensor
	if s == nil {
		zc = tensor.Add(ch, t)
		ld = tensor.Full(0, x.Shape[0])
	} else {
		zc = shiftScale(ch, s, t)
		ld = tensor.SumPerExample(s)
	}
	if g.Observe != nil {
		os := s
		if os == nil {
			os = tensor.New(t.Shape...)
		}
		g.Observe(os, t, zc)
	}
	z := tensor.Concat(id, zc)
	tensor.Done(id, ch, s, t, zc)
	return z, ld
}

// Inverse implements flow.Bijector.
func (g *GlowCoupling) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	id, zc := tensor.Split(z, z.Dim(-1)/2)
	s, t := g.st(id)
	var xc, ld *tensor.Tensor
	if s == nil {
		xc = tensor.Sub(zc, t)
		ld = tensor.Full(0, z.Shape[0])
	} else {
		xc = unshiftScale(zc, s, t)
		ld = tensor.Neg(tensor.SumPerExample(s))
	}
	x := tensor.Concat(id, xc)
	tensor.Done(id, zc, s, t, xc)
	return x, ld
}

// Visit implements nn.Module.
func (g *GlowCoupling) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	if g.Scale != nil {
		fn(nn.Join(prefix, "scale"), g.Scale, true)
	}
	g.Net.Visit(nn.Join(prefix, "st_net"), fn)
}

// shiftScale returns (x + t) ⊙ exp(s). (coupling.go has the same helpers
// for AffineCoupling; these are Glow's own, so that either can change.)
func shiftScale(x, s, t *tensor.Tensor) *tensor.Tensor {
	xt, es := tensor.Add(x, t), tensor.Exp(s)
	z := tensor.Mul(xt, es)
	tensor.Done(xt, es)
	return z
}

// unshiftScale returns z ⊙ exp(-s) - t.
func unshiftScale(z, s, t *tensor.Tensor) *tensor.Tensor {
	ns := tensor.Neg(s)
	es := tensor.Exp(ns)
	ze := tensor.Mul(z, es)
	x := tensor.Sub(ze, t)
	tensor.Done(ns, es, ze)
	return x
}
