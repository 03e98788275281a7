package bijector_test

import (
	"testing"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/flow/mask"
	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// warm runs b once in training mode on x so batch norms hold non-trivial
// running statistics, then switches to evaluation mode.
func warm(b flow.Bijector, mode *nn.Mode, x *tensor.Tensor) {
	mode.Train = true
	p := tensor.GradFree()
	b.Forward(p.Input(x))
	p.Close()
	mode.Train = false
}

func TestContract(t *testing.T) {
	rng := tensor.NewRNG(1)
	const n, h, w = 2, 4, 4
	mode := &nn.Mode{}
	// Weight-normalised st-networks, as RealNVP's default, except where
	// a case says plain.
	couplingOpt := func(m *tensor.Tensor, in, out int, double bool, opt nn.ResNetOptions) flow.Bijector {
		return bijector.NewAffineCoupling(m, nn.NewResNet(rng, in, 4, out, 1, double, mode, opt))
	}
	coupling := func(m *tensor.Tensor, in, out int, double bool) flow.Bijector {
		return couplingOpt(m, in, out, double, nn.ResNetOptions{WeightNorm: true})
	}
	cases := []struct {
		name string
		b    flow.Bijector
		x    *tensor.Tensor
	}{
		{"Logit", bijector.Logit{Constraint: 0.9}, uniform(rng, n, h, w, 1)},
		{"Squeeze", bijector.Squeeze{}, tensor.Randn(rng, n, h, w, 2)},
		{"Flatten", bijector.Reshape{In: []int{h, w, 2}, Out: []int{h * w * 2}}, tensor.Randn(rng, n, h, w, 2)},
		{"CheckerboardCoupling", coupling(mask.Checkerboard(h, w, 2, false), 2, 4, true), tensor.Randn(rng, n, h, w, 2)},
		{"CheckerboardCouplingReverse", coupling(mask.Checkerboard(h, w, 1, true), 1, 2, true), tensor.Randn(rng, n, h, w, 1)},
		{"ChannelCoupling", coupling(mask.Channel(h, w, 4, false), 2, 4, false), tensor.Randn(rng, n, h, w, 4)},
		{"ChannelCouplingReverse", coupling(mask.Channel(h, w, 4, true), 2, 4, false), tensor.Randn(rng, n, h, w, 4)},
		{"HorizontalCoupling", coupling(mask.Horizontal(h, w, 1, false), 1, 2, true), tensor.Randn(rng, n, h, w, 1)},
		// Quadrant 1 -> 2 of the cycle mask (coupling_test.go checks every mask).
		{"CycleCoupling", bijector.NewAffineCouplingPair(mask.Pair{Cond: mask.Quadrant(h, w, 1, 1), Trans: mask.Quadrant(h, w, 1, 2)},
			nn.NewResNet(rng, 1, 4, 2, 1, true, mode, nn.ResNetOptions{WeightNorm: true})), tensor.Randn(rng, n, h, w, 1)},
		{"Chain", flow.Chain{
			coupling(mask.Checkerboard(h, w, 1, false), 1, 2, true),
			bijector.Squeeze{},
			coupling(mask.Channel(h/2, w/2, 4, true), 2, 4, false),
		}, tensor.Randn(rng, n, h, w, 1)},
		{"MultiScale", &bijector.MultiScale{
			Steps: flow.Chain{bijector.Squeeze{}, coupling(mask.Channel(h/2, w/2, 4, false), 2, 4, false)},
			Next: &bijector.MultiScale{
				Steps: flow.Chain{coupling(mask.Checkerboard(h/2, w/2, 2, false), 2, 4, true)},
				Shape: [3]int{h / 2, w / 2, 2},
			},
			Shape: [3]int{h / 2, w / 2, 4},
		}, tensor.Randn(rng, n, h, w, 1)},
	}
	// The st-networks of before weight norm: plain convolutions, the
	// output one zero.
	cases = append(cases, struct {
		name string
		b    flow.Bijector
		x    *tensor.Tensor
	}{"CheckerboardCouplingPlain", couplingOpt(mask.Checkerboard(h, w, 2, false), 2, 4, true, nn.ResNetOptions{OutInit: nn.OutInitZero}), tensor.Randn(rng, n, h, w, 2)})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			flowtest.Perturb(c.b, rng, 0.1)
			warm(c.b, mode, c.x)
			flowtest.CheckBijector(t, c.b, c.x, flowtest.Options{})
		})
	}
}

func uniform(rng *tensor.RNG, shape ...int) *tensor.Tensor {
	x := tensor.New(shape...)
	rng.Uniform(x.Data, 0, 1)
	return x
}

// TestTabularCouplingContract runs the contract on tabular couplings of
// odd and even feature counts, both halves conditioning, with a linear
// st-network (model/tabular runs it with the model's MLP).
func TestTabularCouplingContract(t *testing.T) {
	rng := tensor.NewRNG(3)
	for _, c := range []struct {
		name    string
		d       int
		reverse bool
	}{{"Odd", 7, false}, {"OddReverse", 7, true}, {"Even", 6, false}, {"EvenReverse", 6, true}, {"Two", 2, true}} {
		t.Run(c.name, func(t *testing.T) {
			id, ch := bijector.TabularSizes(c.d, c.reverse)
			b := bijector.NewTabularCoupling(c.d, c.reverse, nn.NewLinear(rng, id, 2*ch, false))
			flowtest.Perturb(b, rng, 0.3)
			flowtest.CheckBijector(t, b, tensor.Randn(rng, 3, c.d), flowtest.Options{})
		})
	}
}

// TestGlowContract runs the contract on Glow's bijectors: actnorm after its
// data-dependent initialisation, both 1x1 convolutions, the three
// couplings with highway st-networks, and the split prior.
func TestGlowContract(t *testing.T) {
	rng := tensor.NewRNG(3)
	const n, h, w, c = 2, 3, 3, 4
	mode := &nn.Mode{}
	an := bijector.NewActNorm(c, mode)
	x0 := tensor.Randn(rng, 8, h, w, c)
	mode.Train = true
	p := tensor.GradFree()
	an.Forward(p.Input(x0))
	p.Close()
	mode.Train = false
	if !an.IsInitialized() {
		t.Fatal("actnorm not initialised by a training-mode Forward")
	}
	hw := func(out int) bijector.STNet { return nn.NewHighway(rng, c/2, 5, out, 2) }
	cases := []struct {
		name string
		b    flow.Bijector
	}{
		{"ActNorm", an},
		{"InvConv1x1", bijector.NewInvConv1x1(rng, c, false)},
		{"InvConv1x1LU", bijector.NewInvConv1x1(rng, c, true)},
		{"GlowCouplingAffine", bijector.NewGlowCoupling(bijector.CouplingAffine, c, hw(c))},
		{"GlowCouplingSigmoid", bijector.NewGlowCoupling(bijector.CouplingSigmoid, c, hw(c))},
		{"GlowCouplingAdditive", bijector.NewGlowCoupling(bijector.CouplingAdditive, c, hw(c/2))},
		{"SplitPrior", &bijector.SplitPrior{Net: nn.NewConv2D(rng, 3, c/2, c, true, true)}},
		{"GlowStep", flow.Chain{bijector.NewActNorm(c, mode), bijector.NewInvConv1x1(rng, c, true),
			bijector.NewGlowCoupling(bijector.CouplingAffine, c, hw(c))}},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			flowtest.Perturb(cs.b, rng, 0.1)
			flowtest.CheckBijector(t, cs.b, tensor.Randn(rng, n, h, w, c), flowtest.Options{})
		})
	}
}
