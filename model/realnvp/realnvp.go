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
//
// The App. K experiments are options too: Mask replaces the checkerboard
// of the spatial couplings by another mask sequence (horizontal,
// vertical, cycle, centre, a PNG bitmap; see mask.Spec), Layout "appk"
// builds the App. K model (Couplings spatial couplings on the full-size
// image: one scale, no squeeze) with any mask, and Bottleneck inserts a
// fully connected bottleneck of that dimension in every st-network
// (nn.Bottleneck). Presets appk and appk_cpu are that model.
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
	// Layout is "multiscale" (the default: the App. E model above) or
	// "appk": the App. K model, Couplings spatial couplings on the whole
	// image, with no squeeze and one scale (Scales is then unused).
	Layout string `json:"layout"`
	// Couplings is the number of couplings of the appk layout; zero means
	// 8 (App. K). It must be zero for the multiscale layout.
	Couplings int `json:"couplings"`
	// Mask names the mask sequence of the spatial couplings (mask.Parse):
	// "checkerboard" (the default), "horizontal", "vertical", "cycle",
	// "centre", "channel" (appk layout only) or "bitmap:PATH.png", whose
	// file must stay readable wherever the model is built again (eval).
	// In the multiscale layout coupling k of each scale takes the pair k
	// of the sequence, at that scale's size; the channel-wise couplings
	// after each squeeze keep their channel masks.
	Mask string `json:"mask"`
	// Bottleneck, when positive, inserts into every st-network a pair of
	// fully connected layers to dimension Bottleneck and back after its
	// middle residual block (App. K; nn.ResNetOptions.Bottleneck); such
	// st-networks have no skip connections. Zero means none.
	Bottleneck int `json:"bottleneck"`
	// Skip, "on" (the default, as the reference code) or "off", gives the
	// st-networks skip connections from every block to the output. App. K
	// describes its baseline without them; with a bottleneck there are
	// none whatever Skip says.
	Skip string `json:"skip"`
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
	// appk: the App. K model (8 couplings, no squeeze, st-networks
	// without skip connections), with the paper preset's st-network size.
	"appk": {Layout: "appk", Blocks: 6, Mid: 64, Skip: "off"},
	// appk_cpu: the App. K model sized for a few minutes of training
	// on 2 cores, for comparing masks and bottlenecks. Its st-networks
	// see 5 pixels around each pixel (a 3x3 input convolution and 2
	// blocks of two 3x3 convolutions): less than half of a 28x28 image,
	// so with the horizontal or cycle mask the transformed pixels farther
	// than that from the conditioning part see only zeros (blocks=7 covers
	// it: on FashionMNIST that fitted the horizontal mask somewhat better,
	// still far worse than the checkerboard).
	"appk_cpu": {Layout: "appk", Blocks: 2, Mid: 16, Skip: "off", Recompute: "off"},
}

// Preset returns the named configuration (paper, cpu, tiny, appk or
// appk_cpu) with defaults filled.
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
	if c.Layout == "" {
		c.Layout = "multiscale"
	}
	if c.Layout == "appk" && c.Couplings == 0 {
		c.Couplings = 8
	}
	if c.Mask == "" {
		c.Mask = "checkerboard"
	}
	if c.Skip == "" {
		c.Skip = "on"
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
	if c.Skip != "on" && c.Skip != "off" {
		return fmt.Errorf("realnvp: skip %q (want on or off)", c.Skip)
	}
	if c.Bottleneck < 0 {
		return fmt.Errorf("realnvp: bottleneck %d is negative (0: none)", c.Bottleneck)
	}
	spec, err := mask.Parse(c.Mask)
	if err != nil {
		return fmt.Errorf("realnvp: %w", err)
	}
	switch c.Layout {
	case "appk":
		if c.Couplings < 1 {
			return fmt.Errorf("realnvp: couplings %d must be positive", c.Couplings)
		}
		for k := 0; k < min(c.Couplings, spec.Period()); k++ {
			if _, err := spec.Pair(k, c.Height, c.Width, c.Channels); err != nil {
				return fmt.Errorf("realnvp: %w", err)
			}
		}
		return nil
	case "multiscale":
	default:
		return fmt.Errorf("realnvp: layout %q (want multiscale or appk)", c.Layout)
	}
	if c.Couplings != 0 {
		return fmt.Errorf("realnvp: couplings %d: the multiscale layout has 3 or 4 couplings per scale (couplings is for layout appk)", c.Couplings)
	}
	if spec.Name == "channel" {
		return fmt.Errorf("realnvp: mask channel: the multiscale layout's spatial couplings need a spatial mask (its channel-wise couplings follow each squeeze)")
	}
	h, w, ch := c.Height, c.Width, c.Channels
	for s := 0; s < c.Scales; s++ {
		for k := 0; k < min(spatialCouplings(s, c.Scales), spec.Period()); k++ {
			if _, err := spec.Pair(k, h, w, ch); err != nil {
				return fmt.Errorf("realnvp: scale %d: %w", s, err)
			}
		}
		if s == c.Scales-1 {
			break
		}
		if h%2 != 0 || w%2 != 0 {
			return fmt.Errorf("realnvp: %dx%d images cannot be squeezed %d times (%d scales)", c.Height, c.Width, c.Scales-1, c.Scales)
		}
		h, w, ch = h/2, w/2, 2*ch
	}
	return nil
}

// spatialCouplings returns the number of spatial couplings of scale s of
// the multiscale layout: 3, and 4 in the last scale.
func spatialCouplings(s, scales int) int {
	if s == scales-1 {
		return 4
	}
	return 3
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

	spec mask.Spec // of Config.Mask
}

// coupling returns a new coupling of mask pair p whose st-network has mid
// hidden channels (doubled inputs after its batch norm when double is
// set), and lists it in m.Couplings. For a channel mask the network maps
// the kept half of the channels to s and t of the other half.
func (m *Model) coupling(rng *tensor.RNG, p mask.Pair, mid int, double bool) *bijector.AffineCoupling {
	cfg := m.Config
	h, w, c := p.Cond.Shape[0], p.Cond.Shape[1], p.Cond.Shape[2]
	in, out := c, 2*c
	if _, channel := mask.ChannelSplit(p.Cond); channel {
		in, out = c/2, c
	}
	net := nn.NewResNet(rng, in, mid, out, cfg.Blocks, double, m.Mode, nn.ResNetOptions{
		WeightNorm: cfg.WeightNorm == "on", OutInit: nn.OutInit(cfg.OutInit), NoSkip: cfg.Skip == "off",
		Bottleneck: cfg.Bottleneck, Height: h, Width: w,
	})
	net.Act = activations[cfg.Activation]
	cp := bijector.NewAffineCouplingPair(p, net)
	m.Couplings = append(m.Couplings, cp)
	return cp
}

// spatial returns coupling k of the mask sequence at size h x w x c. Its
// st-network doubles its normalised input for the checkerboard, as the
// reference code does (for checkerboard couplings only).
func (m *Model) spatial(rng *tensor.RNG, k, h, w, c, mid int) *bijector.AffineCoupling {
	p, err := m.spec.Pair(k, h, w, c)
	if err != nil {
		panic("realnvp: " + err.Error()) // Validate checked it
	}
	return m.coupling(rng, p, mid, m.spec.Name == "checkerboard")
}

// appk builds the App. K body: Couplings spatial couplings on the whole
// image, no squeeze.
func (m *Model) appk(rng *tensor.RNG) flow.Bijector {
	cfg := m.Config
	var steps flow.Chain
	for k := 0; k < cfg.Couplings; k++ {
		steps = append(steps, m.spatial(rng, k, cfg.Height, cfg.Width, cfg.Channels, cfg.Mid))
	}
	return &bijector.MultiScale{Steps: m.wrap(steps), Shape: [3]int{cfg.Height, cfg.Width, cfg.Channels}}
}

// New builds a model with parameters drawn from rng. It panics on an
// invalid configuration (call Validate first for a user-supplied one).
func New(cfg Config, rng *tensor.RNG) *Model {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	cfg = cfg.WithDefaults()
	m := &Model{Config: cfg, Mode: &nn.Mode{}}
	spec, err := mask.Parse(cfg.Mask)
	if err != nil {
		panic(err.Error())
	}
	m.spec = spec
	var body flow.Bijector
	if cfg.Layout == "appk" {
		body = m.appk(rng)
	} else {
		body = m.scale(rng, 0, cfg.Height, cfg.Width, cfg.Channels, cfg.Mid)
	}
	m.Flow = flow.Flow{Bijector: flow.Chain{bijector.Logit{Constraint: cfg.Constraint}, body}}
	return m
}

// scale builds scale s (and, recursively, the following ones) for input of
// shape h x w x c.
func (m *Model) scale(rng *tensor.RNG, s, h, w, c, mid int) flow.Bijector {
	cfg := m.Config
	last := s == cfg.Scales-1
	var steps flow.Chain
	for i := 0; i < spatialCouplings(s, cfg.Scales); i++ {
		steps = append(steps, m.spatial(rng, i, h, w, c, mid))
	}
	if last {
		return &bijector.MultiScale{Steps: m.wrap(steps), Shape: [3]int{h, w, c}}
	}
	steps = append(steps, bijector.Squeeze{})
	h, w, c = h/2, w/2, 4*c
	for i := 0; i < 3; i++ {
		steps = append(steps, m.coupling(rng, mask.Complement(mask.Channel(h, w, c, i%2 == 1)), 2*mid, false))
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
