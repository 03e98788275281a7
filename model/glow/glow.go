// Package glow builds the multi-scale Glow of Kingma & Dhariwal (2018) as
// configured in App. E of Kirichenko et al. (2020) and built by the
// paper's code (PolinaKirichenko/flows_ood, flow_ssl/glow): the logit
// preprocessing of RealNVP (bijector.Logit, constraint 0.9, as the
// reference's iLogits), then per scale a squeeze and K steps of actnorm ->
// invertible 1x1 convolution -> channel-wise coupling whose st-network is
// a convolutional 3-layer highway network (nn.Highway), after which half
// of the channels are factored out (all scales but the last).
//
// The reference's choices are the defaults: plain 1x1 convolutions
// (lu "off"), the coupling s = scale·tanh(raw) ("affine"), no learned prior
// on the factored-out channels (split_prior "off"). The options are
// Glow's own: the LU-parametrised convolution, openai/glow's sigmoid
// scale ("sigmoid"), the additive coupling and the learned conditional
// prior (bijector.SplitPrior).
package glow

import (
	"fmt"
	"sort"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Config describes a Glow. Zero fields take the defaults of WithDefaults
// (the paper's grayscale model).
type Config struct {
	// Height, Width and Channels give the image shape; zero means 28x28x1.
	Height   int `json:"height"`
	Width    int `json:"width"`
	Channels int `json:"channels"`
	// Scales is the number of scales (each begins with a squeeze); zero
	// means 2.
	Scales int `json:"scales"`
	// Steps is K, the flow steps per scale; zero means 16.
	Steps int `json:"steps"`
	// Hidden is the st-networks' hidden width; zero means 200 (App. E
	// grayscale; 400 for colour).
	Hidden int `json:"hidden"`
	// Layers is the number of highway layers per st-network; zero means 3.
	Layers int `json:"layers"`
	// Coupling is affine (the reference's: scale·tanh), sigmoid
	// (openai/glow's) or additive; empty means affine.
	Coupling string `json:"coupling"`
	// LU is "on" for the LU-parametrised 1x1 convolution, "off" (the
	// default, as the reference) for the plain one.
	LU string `json:"lu"`
	// SplitPrior is "on" for a learned conditional prior on the
	// factored-out channels, "off" (the default, as the reference) for
	// the standard normal.
	SplitPrior string `json:"split_prior"`
	// Constraint is the logit preprocessing constraint; zero means 0.9.
	Constraint float64 `json:"constraint"`
}

// presets are the named configurations for 28x28 grayscale images; the
// registry adapts them to colour 32x32 (3 scales x 8 steps, 400 hidden).
var presets = map[string]Config{
	// paper: App. E for MNIST and FashionMNIST (2 scales x 16 steps,
	// 3-layer highway networks of 200 units).
	"paper": {Scales: 2, Steps: 16, Hidden: 200, Layers: 3},
	// cpu: a FashionMNIST run of several epochs in ~15 minutes on 2
	// cores (docs/perf.md).
	"cpu": {Scales: 2, Steps: 8, Hidden: 16, Layers: 1},
	// tiny: seconds; for tests.
	"tiny": {Scales: 2, Steps: 1, Hidden: 4, Layers: 1},
}

// Preset returns the named configuration (paper, cpu or tiny) with
// defaults filled.
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q (known: %v)", name, PresetNames())
	}
	return c.WithDefaults(), nil
}

// PresetNames lists the preset names in order.
func PresetNames() []string {
	var names []string
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// WithDefaults returns c with zero fields replaced by their defaults.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Height, 28)
	def(&c.Width, 28)
	def(&c.Channels, 1)
	def(&c.Scales, 2)
	def(&c.Steps, 16)
	def(&c.Hidden, 200)
	def(&c.Layers, 3)
	if c.Coupling == "" {
		c.Coupling = string(bijector.CouplingAffine)
	}
	if c.LU == "" {
		c.LU = "off"
	}
	if c.SplitPrior == "" {
		c.SplitPrior = "off"
	}
	if c.Constraint == 0 {
		c.Constraint = 0.9
	}
	return c
}

// Validate reports a configuration that cannot be built.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.Height < 2 || c.Width < 2 || c.Channels < 1 || c.Scales < 1 || c.Steps < 1 || c.Hidden < 1 || c.Layers < 0 {
		return fmt.Errorf("glow: invalid config %+v", c)
	}
	if !bijector.GlowCouplingKind(c.Coupling).Valid() {
		return fmt.Errorf("glow: coupling %q (want affine, sigmoid or additive)", c.Coupling)
	}
	if c.LU != "on" && c.LU != "off" {
		return fmt.Errorf("glow: lu %q (want on or off)", c.LU)
	}
	if c.SplitPrior != "on" && c.SplitPrior != "off" {
		return fmt.Errorf("glow: split_prior %q (want on or off)", c.SplitPrior)
	}
	if c.Constraint <= 0 || c.Constraint >= 1 {
		return fmt.Errorf("glow: constraint %v not in (0, 1)", c.Constraint)
	}
	h, w := c.Height, c.Width
	for s := 0; s < c.Scales; s++ {
		if h%2 != 0 || w%2 != 0 {
			return fmt.Errorf("glow: %dx%d images cannot be squeezed %d times (%d scales: each squeezes)", c.Height, c.Width, c.Scales, c.Scales)
		}
		h, w = h/2, w/2
	}
	return nil
}

// Model is a Glow on dequantised images u in [0, 1)^D of shape
// [N, Height, Width, Channels].
type Model struct {
	flow.Flow
	Config Config
	// Mode is shared by the actnorms: training mode initialises those not
	// yet initialised (on the first batch); Group synchronises that
	// initialisation across data-parallel replicas.
	Mode *nn.Mode
	// ActNorms lists every actnorm in forward order.
	ActNorms []*bijector.ActNorm
	// Couplings lists every coupling in forward order (their Observe
	// hooks serve the coupling-layer views).
	Couplings []*bijector.GlowCoupling
}

// New builds a model with parameters drawn from rng. It panics on an
// invalid configuration (call Validate first for a user-supplied one).
func New(cfg Config, rng *tensor.RNG) *Model {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	cfg = cfg.WithDefaults()
	m := &Model{Config: cfg, Mode: &nn.Mode{}}
	body := m.scale(rng, 0, cfg.Height, cfg.Width, cfg.Channels)
	m.Flow = flow.Flow{Bijector: flow.Chain{bijector.Logit{Constraint: cfg.Constraint}, body}}
	return m
}

// scale builds scale s (and, recursively, the following ones) for input
// of shape h x w x c.
func (m *Model) scale(rng *tensor.RNG, s, h, w, c int) flow.Bijector {
	cfg := m.Config
	steps := flow.Chain{bijector.Squeeze{}}
	h, w, c = h/2, w/2, 4*c
	kind := bijector.GlowCouplingKind(cfg.Coupling)
	for k := 0; k < cfg.Steps; k++ {
		an := bijector.NewActNorm(c, m.Mode)
		m.ActNorms = append(m.ActNorms, an)
		out := c
		if kind == bijector.CouplingAdditive {
			out = c / 2
		}
		cp := bijector.NewGlowCoupling(kind, c, nn.NewHighway(rng, c/2, cfg.Hidden, out, cfg.Layers))
		m.Couplings = append(m.Couplings, cp)
		steps = append(steps, an, bijector.NewInvConv1x1(rng, c, cfg.LU == "on"), cp)
	}
	if s == cfg.Scales-1 {
		return &bijector.MultiScale{Steps: steps, Shape: [3]int{h, w, c}}
	}
	if cfg.SplitPrior == "on" {
		// Glow's Conv2dZeros: a zero 3x3 convolution, the standard
		// normal prior at the start
		steps = append(steps, &bijector.SplitPrior{Net: nn.NewConv2D(rng, 3, c/2, c, true, true)})
	}
	next := m.scale(rng, s+1, h, w, c/2)
	return &bijector.MultiScale{Steps: steps, Next: next, Shape: [3]int{h, w, c}}
}

// LogProb returns log p(u) per example, in nats. Without gradient
// recording and in evaluation mode the examples are independent, and
// batches larger than flow.EvalChunk are evaluated a chunk per core
// (flow.Flow.LogProbEach), unless a coupling has an observer (Observe),
// which then sees the whole batch.
func (m *Model) LogProb(u *tensor.Tensor) *tensor.Tensor {
	if !tensor.Recording(u) && !m.Mode.Train && u.Shape[0] > flow.EvalChunk && !m.observed() {
		return m.Flow.LogProbEach(u, 0)
	}
	return m.Flow.LogProb(u)
}

// Replicas returns a model per member of g for data-parallel training
// (train.Parallel): each shares m's parameters and buffers (the same
// memory) but keeps its own gradients; their actnorms, in training mode,
// initialise with the statistics of the whole batch through g (replica r
// has rank r).
func (m *Model) Replicas(g *tensor.Group) ([]*Model, error) {
	reps := make([]*Model, g.Size())
	for r := range reps {
		rep := New(m.Config, tensor.NewRNG(0))
		if err := nn.Share(rep, m); err != nil {
			return nil, err
		}
		rep.Mode.Train, rep.Mode.Group, rep.Mode.Rank = true, g, r
		reps[r] = rep
	}
	return reps, nil
}

// Initialized reports whether every actnorm has had its data-dependent
// initialisation (or has it from a checkpoint).
func (m *Model) Initialized() bool {
	for _, a := range m.ActNorms {
		if !a.IsInitialized() {
			return false
		}
	}
	return true
}

// observed reports whether a coupling has an observer (Observe).
func (m *Model) observed() bool {
	for _, c := range m.Couplings {
		if c.Observe != nil {
			return true
		}
	}
	return false
}

// Dim returns the number of dimensions D of one image.
func (m *Model) Dim() int { return m.Config.Height * m.Config.Width * m.Config.Channels }

// SetTraining switches the actnorms' initialisation on the next batch on
// (true, where not yet done) or off.
func (m *Model) SetTraining(train bool) { m.Mode.Train = train }
