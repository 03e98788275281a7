// Package tabular builds the RealNVP for feature vectors of App. O.1 of
// Kirichenko et al. (2020): a chain of affine couplings
// (bijector.TabularCoupling) whose half masks alternate, each with a
// fully connected st-network, and a standard normal base. It models
// tables (UCI MINIBOONE and HEPMASS) and image embeddings as they are: no
// dequantisation and no logit preprocessing, so log p(x) is a density on
// R^D and losses are in nats per dimension.
//
// The st-network is the reference code's (PolinaKirichenko/flows_ood,
// CouplingLayerTabular): Linear(in, Hidden), ReLU, then Layers times
// Linear(Hidden, Hidden), ReLU, then Linear(Hidden, out), PyTorch's
// initialisation everywhere, no batch norm and no dropout; s = scale ⊙
// tanh(s_raw) with a learned per-feature scale. The paper's "1 hidden
// layer" for UCI data is the reference's num_hidden_layers = 1, Layers
// here. The network sees the conditioning half of the features only and
// predicts s and t for the other half (see bijector.TabularCoupling).
package tabular

import (
	"fmt"
	"sort"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Config describes a tabular RealNVP. The zero value, with Features set,
// is the paper's model for UCI data (App. O.1: 8 couplings, 1 hidden
// layer of 256 units).
type Config struct {
	// Features is D, the length of a feature vector; it must be set (the
	// registry fills it from the data).
	Features int `json:"features"`
	// Couplings is the number of coupling layers; zero means 8.
	Couplings int `json:"couplings"`
	// Hidden is the width of the st-networks' hidden layers; zero means 256.
	Hidden int `json:"hidden"`
	// Layers is the number of Hidden x Hidden layers of each st-network,
	// after its input layer (the reference's num_hidden_layers); zero
	// means 1. Use -1 for none (input layer straight to output layer).
	Layers int `json:"layers"`
	// OutInit initialises each st-network's output layer: "pytorch" (the
	// default, as the reference without --init_zeros) or "zero" (every
	// coupling starts as the identity).
	OutInit string `json:"out_init"`
}

// presets are the named configurations (without Features).
var presets = map[string]Config{
	// paper: App. O.1 for UCI data.
	"paper": {Couplings: 8, Hidden: 256, Layers: 1},
	// embedding: App. O.1 for image embeddings: 3 hidden layers of 512.
	"embedding": {Couplings: 8, Hidden: 512, Layers: 3},
	// cpu: half the width of paper, for short runs.
	"cpu": {Couplings: 8, Hidden: 128, Layers: 1},
	// tiny: seconds; for tests.
	"tiny": {Couplings: 4, Hidden: 16, Layers: 1},
}

// Preset returns the named configuration for d features, defaults filled.
func Preset(name string, d int) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q (known: %v)", name, PresetNames())
	}
	c.Features = d
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
	if c.Couplings == 0 {
		c.Couplings = 8
	}
	if c.Hidden == 0 {
		c.Hidden = 256
	}
	if c.Layers == 0 {
		c.Layers = 1
	}
	if c.OutInit == "" {
		c.OutInit = "pytorch"
	}
	return c
}

// HiddenLayers returns the number of Hidden x Hidden layers per
// st-network (Layers, with -1 meaning none).
func (c Config) HiddenLayers() int { return max(c.WithDefaults().Layers, 0) }

// Validate reports a configuration that cannot be built.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Features < 2:
		return fmt.Errorf("tabular: features %d (want at least 2: a coupling splits the features in two)", c.Features)
	case c.Couplings < 1:
		return fmt.Errorf("tabular: couplings %d (want at least 1)", c.Couplings)
	case c.Hidden < 1:
		return fmt.Errorf("tabular: hidden %d (want at least 1)", c.Hidden)
	case c.Layers < -1:
		return fmt.Errorf("tabular: layers %d (want -1 for none, or at least 1)", c.Layers)
	case c.OutInit != "pytorch" && c.OutInit != "zero":
		return fmt.Errorf("tabular: out_init %q (want pytorch or zero)", c.OutInit)
	}
	return nil
}

// Params returns the number of parameters of the model of c.
func (c Config) Params() int {
	c = c.WithDefaults()
	n := 0
	for i := 0; i < c.Couplings; i++ {
		id, ch := bijector.TabularSizes(c.Features, i%2 == 1)
		n += ch + (id+1)*c.Hidden + c.HiddenLayers()*(c.Hidden+1)*c.Hidden + (c.Hidden+1)*2*ch
	}
	return n
}

// Model is a tabular RealNVP on feature vectors of shape [N, Features].
type Model struct {
	flow.Flow
	Config Config
	// Couplings lists the couplings in forward order.
	Couplings []*bijector.TabularCoupling
}

// New builds a model with parameters drawn from rng. It panics on an
// invalid configuration (call Validate first for a user-supplied one).
func New(cfg Config, rng *tensor.RNG) *Model {
	if err := cfg.Validate(); err != nil {
		panic(err.Error())
	}
	cfg = cfg.WithDefaults()
	m := &Model{Config: cfg}
	var chain flow.Chain
	for i := 0; i < cfg.Couplings; i++ {
		reverse := i%2 == 1
		id, ch := bijector.TabularSizes(cfg.Features, reverse)
		net := NewMLP(rng, id, cfg.Hidden, cfg.HiddenLayers(), 2*ch, cfg.OutInit == "zero")
		c := bijector.NewTabularCoupling(cfg.Features, reverse, net)
		m.Couplings = append(m.Couplings, c)
		chain = append(chain, c)
	}
	m.Flow = flow.Flow{Bijector: chain}
	return m
}

// evalChunk is the number of examples a core evaluates at a time in
// gradient-free LogProb: more than flow.EvalChunk, whose 8 rows suit
// convolutions over images but leave an MLP's matrix products too thin.
const evalChunk = 64

// LogProb returns log p(x) per example, in nats (a density on R^D).
// Without gradient recording, batches larger than evalChunk are
// evaluated a chunk per core (flow.Flow.LogProbEach); the examples are
// independent (the model has no batch norm), so the result does not
// depend on the batch.
func (m *Model) LogProb(x *tensor.Tensor) *tensor.Tensor {
	if !tensor.Recording(x) && x.Shape[0] > evalChunk {
		return m.Flow.LogProbEach(x, evalChunk)
	}
	return m.Flow.LogProb(x)
}

// SetTraining implements model.Model; the model has no batch norm or
// dropout, so training and evaluation compute the same.
func (m *Model) SetTraining(bool) {}

// Dim returns D.
func (m *Model) Dim() int { return m.Config.Features }

// Visit implements nn.Module, naming coupling i "i" (as flow.Chain).
func (m *Model) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	m.Flow.Visit(prefix, fn)
}

var _ nn.Module = (*Model)(nil)
