// Package experiment turns models, data, training and OOD evaluation into
// reproducible runs: a run folder holds config.json, checkpoints, the
// training log and evaluation outputs (see README.md), and each recipe
// reproduces one table or figure of the paper.
//
// The pipeline is generic: the model comes from the registry of package
// model (by the name config.json gives), the objective from package train
// and the data from package data, of kind image (dequantised) or tabular.
//
// Couplings' Observe hooks (flow/bijector.AffineCoupling.Observe) are not
// used here: they fire once per evaluation chunk of flow.EvalChunk
// examples, from several goroutines at once and without the chunk's
// offset in the batch, so a per-layer view built on them must first get
// an offset (and a lock) in that contract.
package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flowood/flowood/internal/atomicfile"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/train"
)

// Bounds on the training hyperparameters of config.json and the command
// line: above any run this project makes, below what overflows a step
// count or exhausts memory for one batch.
const (
	MaxEpochs = 1_000_000
	MaxBatch  = 1 << 16
)

// RunConfig is everything needed to rebuild a run's model and data; it is
// written to RUN/config.json (runfile's version 2 layout) with every
// default filled in.
type RunConfig struct {
	// Spec is the model, its configuration, the objective and the data.
	runfile.Spec
	// Train holds the training hyperparameters.
	Train train.Config
}

// imageShapes gives the image shape a model of each dataset works at: the
// native size, or the paper's setting (CelebA centre-cropped and resized
// to 32x32). Datasets of another shape are resized on loading.
var imageShapes = map[string][3]int{
	"mnist": {28, 28, 1}, "fashionmnist": {28, 28, 1}, "notmnist": {28, 28, 1},
	"cifar10": {32, 32, 3}, "svhn": {32, 32, 3}, "celeba": {32, 32, 3},
	"tinyimagenet": {64, 64, 3}, "imagenet64": {64, 64, 3},
}

// DataShape returns the kind and shape of one example of dataset name as
// a model of it sees it: for images the size of imageShapes; for tables
// the number of features, read from the held-out split.
func DataShape(name string) (datakind.Shape, error) {
	if _, err := splitsOf(name); err != nil {
		return datakind.Shape{}, err
	}
	if isTabular(name) {
		split, err := heldOutSplit(name)
		if err != nil {
			return datakind.Shape{}, err
		}
		t, err := loadTable(name, split)
		if err != nil {
			return datakind.Shape{}, err
		}
		return datakind.TabularShape(t.D), nil
	}
	s, ok := imageShapes[name]
	if !ok {
		return datakind.Shape{}, fmt.Errorf("dataset %q has no image size for models (image datasets: %s)", name, imageNames())
	}
	return datakind.ImageShape(s[0], s[1], s[2]), nil
}

// NewRunConfig returns the configuration of a run of the named model and
// preset on dataset name, before command-line overrides: the preset's
// model and training hyperparameters for the dataset's shape (colour
// 32x32 RealNVPs get 3 scales, as in App. E), maximum likelihood, all
// training examples.
func NewRunConfig(modelName, preset, dataset string) (RunConfig, error) {
	return NewRunConfigShape(modelName, preset, dataset, datakind.Shape{})
}

// NewRunConfigShape is NewRunConfig for images converted to the shape
// given (resized, and converted to grayscale or RGB, on loading) instead
// of the dataset's own: a general-domain model of Tiny-ImageNet at the
// 28x28x1 of a FashionMNIST run, say. The zero Shape is the dataset's.
func NewRunConfigShape(modelName, preset, dataset string, shape datakind.Shape) (RunConfig, error) {
	e, err := model.Lookup(modelName)
	if err != nil {
		return RunConfig{}, err
	}
	if isTabular(dataset) && !e.Accepts(datakind.Tabular) {
		return RunConfig{}, fmt.Errorf("dataset %s is tabular; model %s models %v data", dataset, modelName, e.Kinds)
	}
	own, err := DataShape(dataset)
	if err != nil {
		return RunConfig{}, err
	}
	if shape == (datakind.Shape{}) {
		shape = own
	} else if own.Kind != datakind.Image || shape.Kind != datakind.Image {
		return RunConfig{}, fmt.Errorf("dataset %s: only images can be converted to another shape", dataset)
	} else if err := shape.Validate(); err != nil {
		return RunConfig{}, err
	}
	mc, td, err := e.Preset(preset, shape, dataset)
	if err != nil {
		return RunConfig{}, err
	}
	d := runfile.Data{Name: dataset, Shape: shape, Subset: runfile.SubsetRandom}
	if shape.Kind == datakind.Tabular {
		split, err := trainSplit(dataset)
		if err != nil {
			return RunConfig{}, err
		}
		if split != "train" {
			d.TrainSplit = split
		}
	}
	return RunConfig{
		Spec: runfile.Spec{Model: modelName, Preset: preset, ModelConfig: mc,
			Objective: runfile.Objective{Name: train.MaxLikelihood{}.Name()},
			Data:      d},
		Train: train.Config{Epochs: td.Epochs, Batch: td.Batch, LR: td.LR, WeightDecay: td.WeightDecay, Optimizer: td.Optimizer, Warmup: td.Warmup},
	}, nil
}

// Resolve fills defaults and validates: the data spec, the model's
// configuration (fitted to the data's shape and bounded through the
// registry), the objective and the training hyperparameters.
func (rc *RunConfig) Resolve() error {
	if err := rc.Data.Validate(); err != nil {
		return err
	}
	if rc.Data.Subset == "" {
		rc.Data.Subset = runfile.SubsetRandom
	}
	e, err := model.Lookup(rc.Model)
	if err != nil {
		return err
	}
	if rc.ModelConfig == nil {
		return errors.New("model_config: missing")
	}
	b, err := json.Marshal(rc.ModelConfig)
	if err != nil {
		return fmt.Errorf("model_config: %w", err)
	}
	if rc.ModelConfig, err = e.DecodeConfig(b, rc.Data.Shape); err != nil {
		return err
	}
	if err := resolveObjective(&rc.Objective, rc.Data); err != nil {
		return err
	}
	rc.Train = rc.Train.WithDefaults()
	switch {
	case rc.Train.Epochs > MaxEpochs:
		return fmt.Errorf("train: epochs %d is more than %d", rc.Train.Epochs, MaxEpochs)
	case rc.Train.Batch > MaxBatch:
		return fmt.Errorf("train: batch %d is more than %d", rc.Train.Batch, MaxBatch)
	}
	if err := rc.Train.Validate(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// ReadRunConfig reads RUN/config.json (version 2, or version 1 of runs
// made before the model registry) and resolves it. Errors name the file
// and the field.
func ReadRunConfig(run string) (RunConfig, error) {
	spec, tr, err := runfile.Read(run)
	if err != nil {
		return RunConfig{}, err
	}
	path := filepath.Join(run, runfile.FileName)
	rc := RunConfig{Spec: spec}
	if len(bytes.TrimSpace(tr)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(tr))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rc.Train); err != nil {
			return RunConfig{}, fmt.Errorf("reading %s: train: %w", path, err)
		}
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
	b, err := runfile.Encode(rc.Spec, rc.Train)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Join(run, runfile.FileName), err)
	}
	return writeFileAtomic(filepath.Join(run, runfile.FileName), b)
}

// Entry returns the run's model registry entry.
func (rc RunConfig) Entry() (*model.Entry, error) { return model.Lookup(rc.Model) }

// BuildModel constructs the run's model with parameters initialised from
// the run's seed (resolving first a configuration that SetModelOption
// left as JSON).
func (rc RunConfig) BuildModel() (model.Model, error) {
	if _, raw := rc.ModelConfig.(rawConfig); raw {
		if err := rc.Resolve(); err != nil {
			return nil, err
		}
	}
	return rc.NewModel(rc.Train.Seed)
}

func imageNames() string {
	var names []string
	for n := range imageShapes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// offline adds a hint to a loading error where no mirror is configured.
func offline(err error) error {
	if err != nil && os.Getenv("FLOWOOD_MIRROR") == "" {
		return fmt.Errorf("%w (offline? set FLOWOOD_MIRROR to a mirror folder, or use the embedded subsets)", err)
	}
	return err
}

// LoadData returns a split of the images of dataset name, from the
// embedded subsets when embedded is set and otherwise from the sources of
// package data, converted to the model's image shape (h x w x c) when it
// differs: the data package resizes (CelebA: centre crop first) and
// converts colour.
func LoadData(name, split string, embedded bool, h, w, c int) (*data.Images, error) {
	return loadData(name, split, embedded, h, w, c, "")
}

// loadData is LoadData with the resize by method (data.Options.ResizeMethod;
// empty: the default).
func loadData(name, split string, embedded bool, h, w, c int, method string) (*data.Images, error) {
	opts := data.Options{Embedded: embedded, Channels: c, ResizeMethod: method}
	if h == w {
		opts.Size = h
	}
	im, err := data.Load(name, split, opts)
	if embedded {
		return im, err
	}
	return im, offline(err)
}

// LoadExamples returns split split of the run's dataset d (or, with name
// not empty, of dataset name, scored against a model of d's shape) as
// the model sees it: images converted to d's shape, tables as they are.
// It is an error if the loaded examples do not have d's shape.
func LoadExamples(d runfile.Data, name, split string) (datakind.Examples, error) {
	if name == "" {
		name = d.Name
	}
	var x datakind.Examples
	switch d.Kind {
	case datakind.Image:
		if isTabular(name) {
			return nil, fmt.Errorf("dataset %s is tabular, the model's data are %s", name, d.Shape)
		}
		im, err := LoadData(name, split, d.Embedded, d.Height, d.Width, d.Channels)
		if err != nil {
			return nil, err
		}
		x = im
	case datakind.Tabular:
		if !isTabular(name) {
			return nil, fmt.Errorf("dataset %s is an image dataset, the model's data are %s", name, d.Shape)
		}
		t, err := loadTable(name, split)
		if err != nil {
			return nil, err
		}
		x = t
	default:
		return nil, fmt.Errorf("data kind %q", d.Kind)
	}
	if got := datakind.ShapeOf(x.Shape()); got != d.Shape {
		return nil, fmt.Errorf("dataset %s %s has %s examples, the model expects %s", name, split, got, d.Shape)
	}
	return x, nil
}

// subset returns the examples idx of x, in that order (a copy).
func subset(x datakind.Examples, idx []int) datakind.Examples {
	switch v := x.(type) {
	case *data.Images:
		return v.Subset(idx)
	case *data.Tabular:
		return v.Subset(idx)
	}
	panic(fmt.Sprintf("experiment: subset of %T", x))
}

// limitExamples returns at most n examples of x (all when n <= 0 or n >=
// x.Len()) and their indices in x: the first n where first is set,
// otherwise a random subset drawn with seed (data.SampleIndices), in
// index order.
func limitExamples(x datakind.Examples, n int, first bool, seed uint64) (datakind.Examples, []int) {
	total := x.Len()
	if n <= 0 || n >= total {
		return x, data.SampleIndices(total, total, 0)
	}
	var idx []int
	if first {
		idx = data.SampleIndices(n, n, 0) // 0..n-1
	} else {
		idx = data.SampleIndices(total, n, seed)
	}
	return subset(x, idx), idx
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error { return atomicfile.WriteFile(path, b) }
