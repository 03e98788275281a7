package bijector

import (
	"fmt"

	"github.com/flowood/flowood/flow/mask"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// STNet is the network of a coupling layer: it maps the conditioning part
// of the input ([N, H, W, Cin]) to raw scales and shifts ([N, H, W, 2*Cout]).
type STNet interface {
	Forward(x *tensor.Tensor) *tensor.Tensor
	nn.Module
}

// AffineCoupling is RealNVP's affine coupling layer with conditioning mask
// b (Mask: x_id = b⊙x) and transformed mask m (Trans: x_change), disjoint:
//
//	forward:  z = (x + t) ⊙ exp(s) on m, z = x elsewhere
//	inverse:  x = z ⊙ exp(-s) - t on m, x = z elsewhere
//	log-det:  sum of s over m,   where
//	s = m ⊙ scale ⊙ tanh(s_raw), t = m ⊙ t_raw, (s_raw, t_raw) = Net(b⊙x)
//
// with a learned per-channel scale (initialised to 1). The classic
// coupling has m = 1 - b; the cycle mask (mask.Spec) transforms one
// quadrant from another and leaves the rest unseen and unchanged, so its
// Jacobian is the identity there. For a channel mask (b one half of the
// channels, m the other) the network sees only the kept channels and
// predicts s and t for the other half; otherwise it sees b⊙x.
//
// Observe, when set, receives every Forward's s and t (masked, shape of
// x_change) and output, for the paper's coupling-layer visualisations,
// on the goroutine that called Forward, for the whole batch Forward was
// given (models evaluate in one piece, not in chunks on several cores,
// while an observer is set). The tensors are valid during the call only
// (evaluation recycles buffers): Clone what you keep.
type AffineCoupling struct {
	Mask    *tensor.Tensor // [H, W, C], 1 = conditioning
	Trans   *tensor.Tensor // [H, W, C], 1 = transformed
	Net     STNet
	Scale   *tensor.Tensor // [C], or [C/2] for a channel mask
	Observe func(s, t, z *tensor.Tensor)

	channel   bool
	firstKept bool
}

// NewAffineCoupling returns a coupling that conditions on mask m and
// transforms its complement 1 - m (NewAffineCouplingPair of
// mask.Complement(m)). For a channel mask over C channels, net must map
// C/2 channels to C; otherwise it must map C channels to 2C.
func NewAffineCoupling(m *tensor.Tensor, net STNet) *AffineCoupling {
	if len(m.Shape) != 3 {
		panic(fmt.Sprintf("bijector: coupling mask of shape %v, want [H, W, C]", m.Shape))
	}
	return NewAffineCouplingPair(mask.Complement(m), net)
}

// NewAffineCouplingPair returns a coupling that conditions on p.Cond and
// transforms p.Trans. net must map C channels to 2C, or, when p is a
// channel mask and its complement, C/2 channels to C. It panics on a pair
// that fails p.Check (a programmer mistake: mask.Spec builds valid ones).
func NewAffineCouplingPair(p mask.Pair, net STNet) *AffineCoupling {
	if err := p.Check(); err != nil {
		panic("bijector: " + err.Error())
	}
	c := &AffineCoupling{Mask: p.Cond, Trans: p.Trans, Net: net}
	c.firstKept, c.channel = mask.ChannelSplit(p.Cond)
	if c.channel {
		for i, v := range p.Cond.Data {
			if p.Trans.Data[i] != 1-v {
				c.channel = false
				break
			}
		}
	}
	nc := p.Cond.Shape[2]
	if c.channel {
		nc /= 2
	}
	c.Scale = tensor.Param(nc)
	for i := range c.Scale.Data {
		c.Scale.Data[i] = 1
	}
	return c
}

// st returns the masked scale and shift for conditioning input cond.
func (c *AffineCoupling) st(cond *tensor.Tensor) (s, t *tensor.Tensor) {
	out := c.Net.Forward(cond)
	half := out.Dim(-1) / 2
	if half != c.Scale.Shape[0] {
		panic(fmt.Sprintf("bijector: st-network output %v for coupling with %d transformed channels", out.Shape, c.Scale.Shape[0]))
	}
	raw, t := tensor.Split(out, half)
	tensor.Done(out)
	th := tensor.Tanh(raw)
	tensor.Done(raw)
	s = tensor.MulChannel(th, c.Scale)
	tensor.Done(th)
	if !c.channel {
		s2, t2 := tensor.MulExample(s, c.Trans), tensor.MulExample(t, c.Trans)
		tensor.Done(s, t)
		s, t = s2, t2
	}
	return s, t
}

// split returns the conditioning and transformed channel halves.
func (c *AffineCoupling) split(x *tensor.Tensor) (id, ch *tensor.Tensor) {
	h := x.Dim(-1) / 2
	a, b := tensor.Split(x, h)
	if c.firstKept {
		return a, b
	}
	return b, a
}

func (c *AffineCoupling) join(id, ch *tensor.Tensor) *tensor.Tensor {
	if c.firstKept {
		return tensor.Concat(id, ch)
	}
	return tensor.Concat(ch, id)
}

// Forward implements flow.Bijector.
func (c *AffineCoupling) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	if c.Observe == nil && !tensor.Recording(x) {
		return c.forwardFused(x)
	}
	if c.channel {
		id, ch := c.split(x)
		s, t := c.st(id)
		zc := affine(ch, s, t)
		c.observe(s, t, zc)
		z := c.join(id, zc)
		ld := tensor.SumPerExample(s)
		tensor.Done(id, ch, s, t, zc)
		return z, ld
	}
	xid := tensor.MulExample(x, c.Mask)
	s, t := c.st(xid)
	z := affine(x, s, t)
	c.observe(s, t, z)
	ld := tensor.SumPerExample(s)
	tensor.Done(xid, s, t)
	return z, ld
}

// forwardFused is Forward without gradient recording: what follows the
// st-network is one operation, tensor.CouplingAffine, which computes the
// same values bit for bit.
func (c *AffineCoupling) forwardFused(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	if c.channel {
		id, ch := c.split(x)
		out := c.Net.Forward(id)
		zc, ld := tensor.CouplingAffine(ch, out, c.Scale, nil)
		z := c.join(id, zc)
		tensor.Done(id, ch, out, zc)
		return z, ld
	}
	xid := tensor.MulExample(x, c.Mask)
	out := c.Net.Forward(xid)
	tensor.Done(xid)
	z, ld := tensor.CouplingAffine(x, out, c.Scale, c.Trans)
	tensor.Done(out)
	return z, ld
}

// affine returns (x + t) ⊙ exp(s).
func affine(x, s, t *tensor.Tensor) *tensor.Tensor {
	xt, es := tensor.Add(x, t), tensor.Exp(s)
	z := tensor.Mul(xt, es)
	tensor.Done(xt, es)
	return z
}

// unaffine returns z ⊙ exp(-s) - t.
func unaffine(z, s, t *tensor.Tensor) *tensor.Tensor {
	ns := tensor.Neg(s)
	es := tensor.Exp(ns)
	ze := tensor.Mul(z, es)
	x := tensor.Sub(ze, t)
	tensor.Done(ns, es, ze)
	return x
}

// Describe implements the description flow.Describe gives reports:
// "affine coupling, <mask> mask" (mask.Name of the conditioning mask).
func (c *AffineCoupling) Describe() string {
	return "affine coupling, " + mask.Name(c.Mask) + " mask"
}

func (c *AffineCoupling) observe(s, t, z *tensor.Tensor) {
	if c.Observe != nil {
		c.Observe(s, t, z)
	}
}

// Inverse implements flow.Bijector.
func (c *AffineCoupling) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	if c.channel {
		id, zc := c.split(z)
		s, t := c.st(id)
		xc := unaffine(zc, s, t)
		x := c.join(id, xc)
		ld := tensor.Neg(tensor.SumPerExample(s))
		tensor.Done(id, zc, s, t, xc)
		return x, ld
	}
	zid := tensor.MulExample(z, c.Mask)
	s, t := c.st(zid)
	x := unaffine(z, s, t)
	ld := tensor.Neg(tensor.SumPerExample(s))
	tensor.Done(zid, s, t)
	return x, ld
}

// Visit implements nn.Module.
func (c *AffineCoupling) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	fn(nn.Join(prefix, "scale"), c.Scale, true)
	c.Net.Visit(nn.Join(prefix, "st_net"), fn)
}
