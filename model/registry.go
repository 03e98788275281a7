// Package model is the registry of the flows a run can train: a model's
// name (as in config.json) gives its configuration type, its presets, the
// kinds of data it models and its constructor. What models, the training
// loop and the scorers share about data (its kind, the shape of one
// example, bits/dim) is in the leaf package model/datakind.
//
// The package is light on purpose: it imports the model packages
// (model/realnvp, ...), nn, flow and tensor, never the dataset
// downloaders, plotting or the training loop, so that a library that
// only loads and scores a trained run (detector) can use it.
//
// A model package (realnvp, glow, tabular) does not import this one: it
// has its own Config with the data shape in it, and registers here
// through an Entry written in this package (realnvp.go); the package's
// tests may then import train, which imports datakind but not model.
package model

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Model is a trained or trainable density: LogProb returns log p(x) per
// example in nats (for images, of the dequantised pixels u in [0, 1)^D;
// see Kind), and its tensors are named for checkpoints.
type Model interface {
	nn.Module
	// LogProb returns log p(x), shape [N], for a batch x of shape [N]
	// followed by Shape.Dims().
	LogProb(x *tensor.Tensor) *tensor.Tensor
	// SetTraining switches batch norms (and the like) between batch
	// statistics (true) and running statistics (false).
	SetTraining(train bool)
}

// Config is a model's configuration: a struct that encodes to the
// model_config object of config.json. Validate reports a configuration
// that cannot be built.
type Config interface {
	Validate() error
}

// TrainDefaults are the training hyperparameters a preset comes with;
// zero fields leave the training loop's defaults.
type TrainDefaults struct {
	Epochs      int
	Batch       int
	LR          float64
	WeightDecay float64
	// Optimizer is adam, adamw or rmsprop; empty is the loop's default.
	Optimizer string
	// Warmup is the number of steps over which the learning rate rises
	// linearly from 0 to LR (train.Config.Warmup); 0 is none.
	Warmup int
}

// Entry describes one registered model. Every function field is set.
type Entry struct {
	// Name is the model's name in config.json and on the command line.
	Name string
	// Doc is a one-line description.
	Doc string
	// Kinds lists the data kinds the model is a density of.
	Kinds []datakind.Kind
	// Presets lists the preset names, sorted.
	Presets []string

	// preset returns the named preset for data of shape s from dataset
	// (its registry name, or a file), defaults filled, and the preset's
	// training hyperparameters. s is valid and of one of Kinds.
	preset func(name string, s datakind.Shape, dataset string) (Config, TrainDefaults, error)
	// decode reads a model_config object; unknown fields are errors. The
	// result has defaults filled and has not been checked against s.
	decode func(b []byte) (Config, error)
	// fit checks that cfg, from decode, models data of shape s, filling
	// the shape fields left zero, and bounds its sizes; errors name the
	// field as spelled in JSON.
	fit func(cfg Config, s datakind.Shape) (Config, error)
	// build constructs the model of a fitted cfg with parameters drawn
	// from rng.
	build func(cfg Config, rng *tensor.RNG) (Model, error)
	// replicas returns a replica of m per member of g for data-parallel
	// training, sharing m's parameters, or nil where data-parallel
	// training does not apply to m or does not pay.
	replicas func(m Model, g *tensor.Group) ([]Model, error)
}

// ErrUnknownModel is wrapped by the error Lookup returns for a name that is
// not registered.
var ErrUnknownModel = errors.New("unknown model")

var registry = map[string]*Entry{}

// register adds e; it panics on a duplicate or incomplete entry (a
// programmer mistake).
func register(e *Entry) {
	if _, dup := registry[e.Name]; dup {
		panic("model: " + e.Name + " registered twice")
	}
	if e.preset == nil || e.decode == nil || e.fit == nil || e.build == nil || len(e.Kinds) == 0 {
		panic("model: incomplete entry " + e.Name)
	}
	sort.Strings(e.Presets)
	registry[e.Name] = e
}

// Names returns the registered model names, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Lookup returns the entry of the named model, or an error wrapping
// ErrUnknownModel that lists the known names.
func Lookup(name string) (*Entry, error) {
	e, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownModel, name, strings.Join(Names(), ", "))
	}
	return e, nil
}

// Accepts reports whether the model is a density of data of kind k.
func (e *Entry) Accepts(k datakind.Kind) bool {
	for _, x := range e.Kinds {
		if x == k {
			return true
		}
	}
	return false
}

func (e *Entry) checkShape(s datakind.Shape) error {
	if err := s.Validate(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if !e.Accepts(s.Kind) {
		return fmt.Errorf("model %s does not model %s data (it models %v)", e.Name, s.Kind, e.Kinds)
	}
	return nil
}

// Preset returns the named preset of the model for data of shape s from
// dataset, with every default filled, and the training hyperparameters
// that go with it.
func (e *Entry) Preset(name string, s datakind.Shape, dataset string) (Config, TrainDefaults, error) {
	if err := e.checkShape(s); err != nil {
		return nil, TrainDefaults{}, err
	}
	found := false
	for _, p := range e.Presets {
		found = found || p == name
	}
	if !found {
		return nil, TrainDefaults{}, fmt.Errorf("unknown preset %q of model %s (known: %s)", name, e.Name, strings.Join(e.Presets, ", "))
	}
	cfg, td, err := e.preset(name, s, dataset)
	if err != nil {
		return nil, TrainDefaults{}, err
	}
	cfg, err = e.fit(cfg, s)
	if err != nil {
		return nil, TrainDefaults{}, fmt.Errorf("preset %s: %w", name, err)
	}
	return cfg, td, nil
}

// DecodeConfig reads the model's configuration from JSON (config.json's
// model_config) for data of shape s: unknown fields are errors, zero
// fields take their defaults, the shape fields must agree with s (or be
// left out), and sizes are bounded so that building the model cannot
// exhaust memory. Errors name the field as spelled in JSON
// ("model_config.height ...").
func (e *Entry) DecodeConfig(b []byte, s datakind.Shape) (Config, error) {
	if err := e.checkShape(s); err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 || bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil, fmt.Errorf("model_config: missing")
	}
	cfg, err := e.decode(b)
	if err != nil {
		return nil, fmt.Errorf("model_config: %w", err)
	}
	cfg, err = e.fit(cfg, s)
	if err != nil {
		return nil, fmt.Errorf("model_config: %w", err)
	}
	return cfg, nil
}

// New builds the model of cfg (from Preset or DecodeConfig) with
// parameters drawn from a generator seeded with seed.
func (e *Entry) New(cfg Config, seed uint64) (Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return e.build(cfg, tensor.NewRNG(seed))
}

// Replicas returns a replica of m per member of g for data-parallel
// training (train.Parallel): each shares m's parameters and running
// statistics and synchronises its batch norms through g. It returns nil,
// nil where data-parallel training does not apply to m or does not pay
// (see the model's entry).
func (e *Entry) Replicas(m Model, g *tensor.Group) ([]Model, error) {
	if e.replicas == nil {
		return nil, nil
	}
	return e.replicas(m, g)
}

// fitImageShape sets each image-shape field of a configuration that is
// zero to the data's and refuses one that differs, naming the field as
// spelled in JSON.
func fitImageShape(h, w, c *int, s datakind.Shape) error {
	for _, f := range []struct {
		name string
		v    *int
		data int
	}{{"height", h, s.Height}, {"width", w, s.Width}, {"channels", c, s.Channels}} {
		if *f.v == 0 {
			*f.v = f.data
		} else if *f.v != f.data {
			return fmt.Errorf("%s %d differs from the data's %s %d", f.name, *f.v, f.name, f.data)
		}
	}
	return nil
}

// asModels returns a model package's replicas as Models.
func asModels[T Model](reps []T) []Model {
	out := make([]Model, len(reps))
	for i, r := range reps {
		out[i] = r
	}
	return out
}
