// Package experiment turns models, data, training and OOD evaluation into
// reproducible runs: a run folder holds config.json, checkpoints, the
// training log and evaluation outputs (see README.md), and each recipe
// reproduces one table or figure of the paper.
package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flowood/flowood/internal/atomicfile"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// RunConfig is everything needed to rebuild a run's model and data; it is
// written to RUN/config.json with every default filled in.
type RunConfig struct {
	Version int            `json:"version"`
	Model   string         `json:"model"`
	Preset  string         `json:"preset"`
	RealNVP realnvp.Config `json:"realnvp"`
	Data    DataConfig     `json:"data"`
	Train   train.Config   `json:"train"`
}

// DataConfig names the in-distribution dataset and where it comes from.
type DataConfig struct {
	// Name is a dataset known to package data (mnist, fashionmnist, ...).
	Name string `json:"name"`
	// Embedded selects the real subsets embedded in the binary instead of
	// the full dataset.
	Embedded bool `json:"embedded"`
	// TrainLimit uses only the first TrainLimit training images (0: all).
	TrainLimit int `json:"train_limit"`
}

// trainDefaults are the training hyperparameters of each preset: paper is
// App. E for grayscale RealNVP, with the reference code's default weight
// decay (5e-5, on the weight-norm gains: realnvp.Config.Decay); cpu and
// tiny are sized for small machines.
var trainDefaults = map[string]train.Config{
	"paper": {Epochs: 80, Batch: 32, LR: 5e-5, WeightDecay: 5e-5},
	"cpu":   {Epochs: 10, Batch: 64, LR: 1e-3, WeightDecay: 5e-5},
	"tiny":  {Epochs: 1, Batch: 32, LR: 1e-3},
}

// imageShapes gives the image shape a model of each dataset works at: the
// native size, or the paper's setting (CelebA centre-cropped and resized
// to 32x32). Datasets of another shape are resized on loading.
var imageShapes = map[string][3]int{
	"mnist": {28, 28, 1}, "fashionmnist": {28, 28, 1}, "notmnist": {28, 28, 1},
	"cifar10": {32, 32, 3}, "svhn": {32, 32, 3}, "celeba": {32, 32, 3},
	"tinyimagenet": {64, 64, 3}, "imagenet64": {64, 64, 3},
}

// NewRunConfig returns the configuration of a RealNVP run with the named
// preset on dataset name, before command-line overrides. Colour 32x32
// datasets get 3 scales, as in App. E.
func NewRunConfig(model, preset, dataset string) (RunConfig, error) {
	if model != "realnvp" {
		return RunConfig{}, fmt.Errorf("unknown model %q (known: realnvp)", model)
	}
	mc, err := realnvp.Preset(preset)
	if err != nil {
		return RunConfig{}, err
	}
	if _, err := data.Splits(dataset); err != nil {
		return RunConfig{}, err
	}
	shape, ok := imageShapes[dataset]
	if !ok {
		return RunConfig{}, fmt.Errorf("dataset %q is not an image dataset a RealNVP can model (image datasets: %s)", dataset, imageNames())
	}
	mc.Height, mc.Width, mc.Channels = shape[0], shape[1], shape[2]
	if shape[2] == 3 && shape[0] == 32 {
		mc.Scales = 3
	}
	return RunConfig{Version: 1, Model: model, Preset: preset, RealNVP: mc,
		Data: DataConfig{Name: dataset}, Train: trainDefaults[preset]}, nil
}

// Resolve fills defaults and validates.
func (rc *RunConfig) Resolve() error {
	rc.RealNVP = rc.RealNVP.WithDefaults()
	rc.Train = rc.Train.WithDefaults()
	if err := rc.RealNVP.Validate(); err != nil {
		return err
	}
	return rc.Train.Validate()
}

// ReadRunConfig reads RUN/config.json.
func ReadRunConfig(run string) (RunConfig, error) {
	path := filepath.Join(run, "config.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return RunConfig{}, fmt.Errorf("%s is not a run folder: %s does not exist", run, path)
	}
	if err != nil {
		return RunConfig{}, err
	}
	var rc RunConfig
	if err := json.Unmarshal(b, &rc); err != nil {
		return RunConfig{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if rc.Version != 1 {
		return RunConfig{}, fmt.Errorf("reading %s: unsupported version %d", path, rc.Version)
	}
	if err := rc.Resolve(); err != nil {
		return RunConfig{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return rc, nil
}

// Write stores the configuration as RUN/config.json (atomically).
func (rc RunConfig) Write(run string) error {
	if err := os.MkdirAll(run, 0o755); err != nil {
		return fmt.Errorf("creating run folder: %w", err)
	}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(run, "config.json"), append(b, '\n'))
}

// BuildModel constructs the run's model with parameters initialised from
// the run's seed.
func (rc RunConfig) BuildModel() *realnvp.Model {
	return realnvp.New(rc.RealNVP, tensor.NewRNG(rc.Train.Seed))
}

func imageNames() string {
	var names []string
	for n := range imageShapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// LoadData returns a split of dataset name, from the embedded subsets when
// embedded is set and otherwise from the sources of package data,
// converted to the model's image shape (h x w x c) when it differs: the
// data package resizes (CelebA: centre crop first) and converts colour.
func LoadData(name, split string, embedded bool, h, w, c int) (*data.Images, error) {
	opts := data.Options{Embedded: embedded, Channels: c}
	if h == w {
		opts.Size = h
	}
	im, err := data.Load(name, split, opts)
	if embedded {
		return im, err
	}
	if err != nil && os.Getenv("FLOWOOD_MIRROR") == "" {
		return nil, fmt.Errorf("%w (offline? set FLOWOOD_MIRROR to a mirror folder, or use the embedded subsets)", err)
	}
	return im, err
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteFile(path, b) }
