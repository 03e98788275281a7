package nn

import (
	"strconv"

	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/tensor"
)

// Highway is the st-network of the paper's Glow (App. E: a 3-layer
// Highway network), as the reference code builds it (flows_ood's
// HighwayNetwork): convolutional, a 3x3 input convolution to Hidden
// channels, Layers highway layers
//
//	gate = sigmoid(conv_t(h)),   h' = conv_h(h) ⊙ gate + h ⊙ (1 - gate)
//
// with 3x3 convolutions conv_h and conv_t (no other nonlinearity), and a
// 1x1 output convolution. Convolution weights start N(0, 0.05²) with zero
// biases, the output convolution at zero (so a coupling starts as the
// identity), as the reference's Conv2d and Conv2dZeros.
type Highway struct {
	In     *Conv2D
	H, T   []*Conv2D
	Out    *Conv2D
	Hidden int
}

// NewHighway returns a highway network from in to out channels with the
// given hidden width and number of highway layers, weights drawn from rng.
func NewHighway(rng *tensor.RNG, in, hidden, out, layers int) *Highway {
	conv := func(k, cin, cout int) *Conv2D {
		c := NewConv2D(rng, k, cin, cout, true, true)
		rng.Normal(c.W.Data, 0, 0.05)
		return c
	}
	h := &Highway{In: conv(3, in, hidden), Hidden: hidden, Out: NewConv2D(rng, 1, hidden, out, true, true)}
	for i := 0; i < layers; i++ {
		h.H = append(h.H, conv(3, hidden, hidden))
		h.T = append(h.T, conv(3, hidden, hidden))
	}
	return h
}

// Forward implements the st-network.
func (h *Highway) Forward(x *tensor.Tensor) *tensor.Tensor {
	a := h.In.Forward(x)
	for i := range h.H {
		tr := h.T[i].Forward(a)
		hh := h.H[i].Forward(a)
		next := highwayMix(tr, hh, a)
		tensor.Done(tr, hh, a)
		a = next
	}
	y := h.Out.Forward(a)
	tensor.Done(a)
	return y
}

// Visit implements Module.
func (h *Highway) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	h.In.Visit(Join(prefix, "in_conv"), fn)
	for i := range h.H {
		p := Join(prefix, "layers."+strconv.Itoa(i))
		h.H[i].Visit(Join(p, "conv_h"), fn)
		h.T[i].Visit(Join(p, "conv_t"), fn)
	}
	h.Out.Visit(Join(prefix, "out_conv"), fn)
}

// highwayMix returns a + sigmoid(t) ⊙ (h - a), a highway layer's output,
// as one operation: the gate is computed as 0.5 + 0.5·tanh(t/2) with the
// vectorised kernels.Tanh (tensor.Sigmoid's float64 exponential was 45% of
// a Glow training step), and the backward pass gives
//
//	dt = gy ⊙ (h - a) ⊙ g(1-g),   dh = gy ⊙ g,   da = gy ⊙ (1-g).
func highwayMix(t, h, a *tensor.Tensor) *tensor.Tensor {
	n := len(a.Data)
	if len(t.Data) != n || len(h.Data) != n {
		panic("nn: highway layer of mismatched shapes")
	}
	g := make([]float32, n)
	for i, v := range t.Data {
		g[i] = 0.5 * v
	}
	kernels.Tanh(g, g)
	out := make([]float32, n)
	hd, ad := h.Data, a.Data
	for i, v := range g {
		s := 0.5*v + 0.5
		g[i] = s
		out[i] = ad[i] + s*(hd[i]-ad[i])
	}
	return tensor.Custom(a.Shape, out, []*tensor.Tensor{t, h, a}, func(gy []float32) {
		hd, ad := h.Data, a.Data
		var gt, gh, ga []float32
		if t.RequiresGrad() {
			gt = make([]float32, n)
			for i, s := range g {
				gt[i] = gy[i] * (hd[i] - ad[i]) * s * (1 - s)
			}
			tensor.AccumGrad(t, gt)
		}
		if h.RequiresGrad() {
			gh = make([]float32, n)
			for i, s := range g {
				gh[i] = gy[i] * s
			}
			tensor.AccumGrad(h, gh)
		}
		if a.RequiresGrad() {
			ga = make([]float32, n)
			for i, s := range g {
				ga[i] = gy[i] * (1 - s)
			}
			tensor.AccumGrad(a, ga)
		}
	})
}
