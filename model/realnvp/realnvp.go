// Package realnvp builds the multi-scale RealNVP of Dinh et al. (2016) as
// configured in App. E of Kirichenko et al. (2020): per scale, 3 affine
// couplings with checkerboard masks, a squeeze, 3 couplings with
// channel-wise masks, and half of the channels factored out; the last scale
// has 4 checkerboard couplings. Every coupling's st-network is an nn.ResNet
// with batch norm; its hidden width doubles at each scale and is doubled
// again for channel-wise couplings, as in the reference code. Inputs are
// dequantised pixels u in [0, 1)^D, first mapped by the Logit
// preprocessing, whose log-det is part of the flow.
//
// By default the model is the reference code's (PolinaKirichenko/flows_ood,
// after chrischute/real-nvp): weight-normalised st-network convolutions,
// PyTorch's initialisation everywhere, output convolutions included, and
// weight decay only on the weight-norm gains and the couplings' scales.
// Each of these is a Config option; docs/reference-differences.md lists
// every known difference from the reference.
package realnvp

import (
	"fmt"
	"sort"
	"strings"

	"github.com/flowood/flowood/internal/jsonstrict"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/flow/mask"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Config describes a RealNVP. The zero value is the paper's model for
// 28x28 grayscale images (App. E: 2 scales, 6 residual blocks, 64 hidden
// channels).
type Config struct {
	// Height, Width and Channels give the image shape; zero means 28x28x1.
	Height   int `json:"height"`
	Width    int `json:"width"`
	Channels int `json:"channels"`
	// Scales is the number of scales; zero means 2.
	Scales int `json:"scales"`
	// Blocks is the number of residual blocks per st-network; zero means 6.
	Blocks int `json:"blocks"`
	// Mid is the hidden width of the first scale's checkerboard
	// st-networks; zero means 64.
	Mid int `json:"mid"`
	// Constraint is the logit preprocessing constraint; zero means 0.9.
	Constraint float64 `json:"constraint"`
	// Recompute, when "on", makes each scale's steps recover their
	// activations in the backward pass by inverting the flow instead of
	// storing them (flow.Recompute); "off" stores them. Empty means on.
	Recompute string `json:"recompute"`
	// Activation of the st-networks: "relu" (the default, as in the paper)
	// or "softplus" (smooth, so finite differences are exact to test the
	// model's gradients end to end).
	Activation string `json:"activation"`
	// WeightNorm, "on" (the default, as the reference's WNConv2d) or
	// "off", weight-normalises every st-network convolution
	// (nn.NewWNConv2D): checkpoints then hold each convolution's
	// weight_g and weight_v instead of its weight.
	WeightNorm string `json:"weight_norm"`
	// OutInit initialises each st-network's output convolution: "pytorch"
	// (the default: as every other convolution, as in the reference
	// without --init_zeros), "zero" (kernel and bias zero, so every
	// coupling starts as the identity) or "zero_bias" (what the reference's
	// --init_zeros achieves under weight norm). See nn.OutInit.
	OutInit string `json:"out_init"`
	// Decay names the parameters that training's weight decay applies to
	// (Model.Decays): "gains" (the default, as the reference: the gains g
	// of weight-normalised convolutions and the couplings' scales, which
	// are the reference's rescale.weight_g) or "all".
	Decay string `json:"decay"`
}

// legacy holds the values that the options added with weight norm take
// in configurations written before them: a JSON object without these
// fields (an older config.json or checkpoint) builds and trains the model
// it built then.
var legacy = Config{WeightNorm: "off", OutInit: string(nn.OutInitZero), Decay: "all"}

// UnmarshalJSON decodes c, giving the fields weight_norm, out_init and
// decay their values from before they existed when the JSON lacks them
// (plain convolutions, zero output convolutions, weight decay on every
// parameter). A Config built in Go, or decoded from JSON with the fields
// (as every config.json written since has), gets the defaults of
// WithDefaults instead.
//
// Unknown fields are an error (a misspelt field of config.json must not
// silently leave a default).
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config // without this method
	v := plain(legacy)
	if err := jsonstrict.Decode(b, &v); err != nil {
		return err
	}
	*c = Config(v)
	return nil
}

// presets are the named configurations for 28x28 grayscale images.
var presets = map[string]Config{
	// paper: App. E for MNIST and FashionMNIST.
	"paper": {Scales: 2, Blocks: 6, Mid: 64},
	// cpu: small enough that an epoch of FashionMNIST takes minutes on 2 cores.
	// It stores activations: at this size recomputation costs ~1.6x time
	// for memory the machine has (see docs/perf.md).
	"cpu": {Scales: 2, Blocks: 2, Mid: 16, Recompute: "off"},
	// tiny: seconds; for tests.
	"tiny": {Scales: 2, Blocks: 1, Mid: 4, Recompute: "off"},
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
	def(&c.Blocks, 6)
	def(&c.Mid, 64)
	if c.Constraint == 0 {
		c.Constraint = 0.9
	}
	if c.Activation == "" {
		c.Activation = "relu"
	}
	if c.Recompute == "" {
		c.Recompute = "on"
	}
	if c.WeightNorm == "" {
		c.WeightNorm = "on"
	}
	if c.OutInit == "" {
		c.OutInit = string(nn.OutInitPyTorch)
	}
	if c.Decay == "" {
		c.Decay = "gains"
	}
	return c
}

// Validate reports a configuration that cannot be built.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if c.Height < 2 || c.Width < 2 || c.Channels < 1 || c.Scales < 1 || c.Blocks < 0 || c.Mid < 1 {
		return fmt.Errorf("realnvp: invalid config %+v", c)
	}
	if c.Recompute != "on" && c.Recompute != "off" {
		return fmt.Errorf("realnvp: recompute %q (want on or off)", c.Recompute)
	}
	if c.WeightNorm != "on" && c.WeightNorm != "off" {
		return fmt.Errorf("realnvp: weight_norm %q (want on or off)", c.WeightNorm)
	}
	if !nn.OutInit(c.OutInit).Valid() {
		return fmt.Errorf("realnvp: out_init %q (want pytorch, zero or zero_bias)", c.OutInit)
	}
	if c.Decay != "gains" && c.Decay != "all" {
		return fmt.Errorf("realnvp: decay %q (want gains or all)", c.Decay)
	}
	if _, ok := activations[c.Activation]; !ok {
		return fmt.Errorf("realnvp: unknown activation %q (want relu or softplus)", c.Activation)
	}
	if c.Constraint <= 0 || c.Constraint >= 1 {
		return fmt.Errorf("realnvp: constraint %v not in (0, 1)", c.Constraint)
	}
	h, w := c.Height, c.Width
	for s := 0; s < c.Scales-1; s++ {
		if h%2 != 0 || w%2 != 0 {
			return fmt.Errorf("realnvp: %dx%d images cannot be squeezed %d times (%d scales)", c.Height, c.Width, c.Scales-1, c.Scales)
		}
		h, w = h/2, w/2
	}
	return nil
}

// activations maps Config.Activation to nn.ResNet.Act; nil is ReLU fused
// with the batch norm before it.
var activations = map[string]func(*tensor.Tensor) *tensor.Tensor{
	"relu":     nil,
	"softplus": tensor.Softplus,
}

// Model is a RealNVP flow on dequantised images u in [0, 1)^D of shape
// [N, Height, Width, Channels].
type Model struct {
	flow.Flow
	Config Config
	// Mode switches all batch norms between training and evaluation.
	Mode *nn.Mode
	// Couplings lists every coupling in forward order, for visualisation.
	Couplings []*bijector.AffineCoupling
}

// New builds a model with parameters drawn from rng. It panics on an
// invalid configuration (call Validate first for a user-supplied one).
func New(cfg Config, rng *tensor.RNG) *Model {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	cfg = cfg.WithDefaults()
	m := &Model{Config: cfg, Mode: &nn.Mode{}}
	body := m.scale(rng, 0, cfg.Height, cfg.Width, cfg.Channels, cfg.Mid)
	m.Flow = flow.Flow{Bijector: flow.Chain{bijector.Logit{Constraint: cfg.Constraint}, body}}
	return m
}

// scale builds scale s (and, recursively, the following ones) for input of
// shape h x w x c.
func (m *Model) scale(rng *tensor.RNG, s, h, w, c, mid int) flow.Bijector {
	cfg := m.Config
	coupling := func(msk *tensor.Tensor, in, mid, out int, double bool) *bijector.AffineCoupling {
		net := nn.NewResNet(rng, in, mid, out, cfg.Blocks, double, m.Mode,
			nn.ResNetOptions{WeightNorm: cfg.WeightNorm == "on", OutInit: nn.OutInit(cfg.OutInit)})
		net.Act = activations[cfg.Activation]
		cp := bijector.NewAffineCoupling(msk, net)
		m.Couplings = append(m.Couplings, cp)
		return cp
	}
	last := s == cfg.Scales-1
	var steps flow.Chain
	nCheck := 3
	if last {
		nCheck = 4
	}
	for i := 0; i < nCheck; i++ {
		steps = append(steps, coupling(mask.Checkerboard(h, w, c, i%2 == 1), c, mid, 2*c, true))
	}
	if last {
		return &bijector.MultiScale{Steps: m.wrap(steps), Shape: [3]int{h, w, c}}
	}
	steps = append(steps, bijector.Squeeze{})
	h, w, c = h/2, w/2, 4*c
	for i := 0; i < 3; i++ {
		steps = append(steps, coupling(mask.Channel(h, w, c, i%2 == 1), c/2, 2*mid, c, false))
	}
	next := m.scale(rng, s+1, h, w, c/2, 2*mid)
	return &bijector.MultiScale{Steps: m.wrap(steps), Next: next, Shape: [3]int{h, w, c}}
}

// wrap returns a scale's steps, recomputing activations when configured.
func (m *Model) wrap(steps flow.Chain) flow.Bijector {
	if m.Config.Recompute == "off" {
		return steps
	}
	return &flow.Recompute{Chain: steps, Mode: m.Mode}
}

// LogProb returns log p(u) per example, in nats. Without gradient
// recording and with the batch norms in evaluation mode the examples are
// independent, and batches larger than flow.EvalChunk are evaluated a
// chunk per core (flow.Flow.LogProbEach), which is faster; unless a
// coupling has an observer, which then sees the whole batch at once.
func (m *Model) LogProb(u *tensor.Tensor) *tensor.Tensor {
	if !tensor.Recording(u) && !m.Mode.Train && u.Shape[0] > flow.EvalChunk && !m.observed() {
		return m.Flow.LogProbEach(u, 0)
	}
	return m.Flow.LogProb(u)
}

// Replicas returns a model per member of g for data-parallel training
// (train.Parallel):
// each shares m's parameters and running statistics (the same memory, so
// an optimiser step on m's parameters reaches them all) but keeps its own
// gradients, and their batch norms, in training mode, normalise with the
// statistics of the whole batch through g (replica r has rank r). Models
// that recompute activations in the backward pass are refused: replicas
// of them are not tested (and the preset that recomputes, paper, trains
// no faster data-parallel).
func (m *Model) Replicas(g *tensor.Group) ([]*Model, error) {
	if m.Config.Recompute == "on" {
		return nil, fmt.Errorf("realnvp: data-parallel replicas of a model with recompute on")
	}
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

// Decays reports whether training's weight decay applies to the
// parameter of the given name (as nn.Tensors names it): every parameter
// with Config.Decay "all"; with "gains", the gains of weight-normalised
// convolutions (weight_g) and the couplings' per-channel scales, as the
// reference code's optimiser groups (names ending in weight_g) do.
func (m *Model) Decays(name string) bool {
	if m.Config.Decay == "all" {
		return true
	}
	return strings.HasSuffix(name, ".weight_g") || name == "weight_g" ||
		strings.HasSuffix(name, ".scale") || name == "scale"
}

// Dim returns the number of dimensions D of one image.
func (m *Model) Dim() int { return m.Config.Height * m.Config.Width * m.Config.Channels }

// SetTraining switches batch norms to batch statistics (true) or running
// statistics (false).
func (m *Model) SetTraining(train bool) { m.Mode.Train, m.Mode.Frozen = train, false }

// observed reports whether a coupling has an observer (Observe).
func (m *Model) observed() bool {
	for _, c := range m.Couplings {
		if c.Observe != nil {
			return true
		}
	}
	return false
}
