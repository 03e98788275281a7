// Package runfile reads and writes a run folder's config.json: which
// model a run trains (its registry name and configuration), on which data
// (dataset name, kind and example shape) and with which objective; the
// training hyperparameters are kept as raw JSON for the training
// pipeline (package experiment) to decode. It also locks run folders.
//
// Like package model it is light: it does not import the dataset
// downloaders, plotting or the training loop, so a library that only
// loads and scores a trained run can read config.json with it.
//
// # config.json, version 2
//
//	{
//	  "version": 2,
//	  "model": "realnvp",              // a name in the model registry
//	  "preset": "cpu",                 // the preset the run started from
//	  "model_config": {...},           // the model's Config, every default filled
//	  "objective": {"name": "likelihood"},
//	  "data": {
//	    "name": "fashionmnist",        // a dataset name known to package data
//	    "kind": "image",               // image or tabular
//	    "height": 28, "width": 28, "channels": 1,   // images (features: tables)
//	    "embedded": false,             // the subsets embedded in the binary
//	    "train_limit": 0,              // train on this many examples (0: all)
//	    "subset": "random",            // how: a seeded random subset, or "first" (version 1 runs)
//	    "subset_seed": 0,
//	    "train_split": "val"           // only where it is not "train" (MINIBOONE here)
//	  },
//	  "train": {...}                   // train.Config
//	}
//
// Version 1 run folders (a "realnvp" object instead of model_config, no
// data shape) are read as the equivalent version 2 configuration; their
// train_limit took the first images, which Data.Subset "first" keeps.
package runfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/flowood/flowood/internal/jsonstrict"

	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/realnvp"
)

const (
	// FileName is the configuration's file name in a run folder.
	FileName = "config.json"
	// Version is the version of config.json that Encode writes. Read
	// also reads version 1.
	Version = 2
	// maxFileSize bounds what Read reads: a configuration is a few KB.
	maxFileSize = 1 << 20
)

// Subset values of Data.Subset.
const (
	SubsetRandom = "random"
	SubsetFirst  = "first"
)

// Data says what a run trains on.
type Data struct {
	// Name is a dataset known to package data (mnist, fashionmnist, ...).
	Name string `json:"name"`
	// Shape is the kind and shape of one example as the model sees it;
	// images of another size are resized (and converted to Channels) on
	// loading.
	datakind.Shape
	// Embedded selects the real subsets embedded in the binary instead of
	// the full dataset.
	Embedded bool `json:"embedded"`
	// TrainLimit trains on TrainLimit examples of the training split (0:
	// all), chosen as Subset says.
	TrainLimit int `json:"train_limit"`
	// Subset is how TrainLimit examples are chosen: SubsetRandom (or
	// empty), a random subset drawn with SubsetSeed (data.SampleIndices),
	// or SubsetFirst, the first ones in file order (version 1 runs).
	Subset string `json:"subset,omitempty"`
	// SubsetSeed seeds the random subset.
	SubsetSeed uint64 `json:"subset_seed"`
	// BackgroundNoise, when positive, trains on perturbed images: each
	// pixel of a training example is replaced, with this probability
	// and anew each time the example is drawn, by a uniform random value
	// (Ren et al. 2019's background model, for the likelihood-ratio
	// score). Evaluation data are never perturbed.
	BackgroundNoise float64 `json:"background_noise,omitempty"`
	// TrainSplit is the split trained on: empty means "train"; "val" for
	// a data set without a train split (the mirror's MINIBOONE), which is
	// then evaluated on its test split.
	TrainSplit string `json:"train_split,omitempty"`
}

// Train returns the split trained on: TrainSplit, or "train".
func (d Data) Train() string {
	if d.TrainSplit == "" {
		return "train"
	}
	return d.TrainSplit
}

// Validate reports a dataset spec that cannot be right; errors name the
// field as spelled in JSON. It does not check that the dataset exists.
func (d Data) Validate() error {
	if d.Name == "" {
		return errors.New("data: name is missing")
	}
	if err := d.Shape.Validate(); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	if d.TrainLimit < 0 {
		return fmt.Errorf("data: train_limit %d is negative", d.TrainLimit)
	}
	if !(d.BackgroundNoise >= 0 && d.BackgroundNoise < 1) {
		return fmt.Errorf("data: background_noise %v is not in [0, 1)", d.BackgroundNoise)
	}
	if d.BackgroundNoise > 0 && d.Kind != datakind.Image {
		return fmt.Errorf("data: background_noise perturbs pixels; the data are %s", d.Kind)
	}
	if d.TrainSplit != "" && d.TrainSplit != "train" && d.TrainSplit != "val" {
		return fmt.Errorf("data: train_split %q (want train or val)", d.TrainSplit)
	}
	if d.Subset != "" && d.Subset != SubsetRandom && d.Subset != SubsetFirst {
		return fmt.Errorf("data: subset %q (want %q or %q)", d.Subset, SubsetRandom, SubsetFirst)
	}
	return nil
}

// Objective names what training minimises (package train's objectives).
type Objective struct {
	// Name is the objective: "likelihood" (maximum likelihood; empty
	// means it) or "negative" (negative training, App. D, eq. 6:
	// train.Negative).
	Name string `json:"name"`
	// NegativeData is the dataset whose likelihood "negative" pushes
	// down: its train split, converted to the shape of Data as the
	// training set is, and limited like it by Data.TrainLimit. Empty
	// for "likelihood".
	NegativeData string `json:"negative_data,omitempty"`
	// NegativeThreshold is the paper's c, in the paper's scale (nats of
	// the reference code's log-likelihood; train.Negative documents the
	// conversion to flowood's). Nil for "likelihood".
	NegativeThreshold *float64 `json:"negative_threshold,omitempty"`
	// NegativeWeight is the weight w of the OOD term (train.Negative;
	// 1, the reference's). Zero for "likelihood".
	NegativeWeight float64 `json:"negative_weight,omitempty"`
}

// Spec is a run's configuration without its training hyperparameters:
// what model, on what data, for what objective.
type Spec struct {
	// Model is the model's registry name.
	Model string
	// Preset is the preset the run started from (informational).
	Preset string
	// ModelConfig is the model's configuration, defaults filled and
	// checked against Data's shape.
	ModelConfig model.Config
	Objective   Objective
	Data        Data
}

// Entry returns the model's registry entry.
func (s Spec) Entry() (*model.Entry, error) { return model.Lookup(s.Model) }

// NewModel builds the run's model with parameters drawn from seed (a
// checkpoint then replaces them).
func (s Spec) NewModel(seed uint64) (model.Model, error) {
	e, err := s.Entry()
	if err != nil {
		return nil, err
	}
	return e.New(s.ModelConfig, seed)
}

// file is the JSON layout of version 2.
type file struct {
	Version     int             `json:"version"`
	Model       string          `json:"model"`
	Preset      string          `json:"preset"`
	ModelConfig json.RawMessage `json:"model_config"`
	Objective   Objective       `json:"objective"`
	Data        Data            `json:"data"`
	Train       json.RawMessage `json:"train"`
}

// fileV1 is the JSON layout of version 1.
type fileV1 struct {
	Version int             `json:"version"`
	Model   string          `json:"model"`
	Preset  string          `json:"preset"`
	RealNVP json.RawMessage `json:"realnvp"`
	Data    struct {
		Name       string `json:"name"`
		Embedded   bool   `json:"embedded"`
		TrainLimit int    `json:"train_limit"`
	} `json:"data"`
	Train json.RawMessage `json:"train"`
}

// Encode returns the content of config.json (version 2, indented) for s
// and the training hyperparameters train (a struct encoded as the train
// object).
func Encode(s Spec, train any) ([]byte, error) {
	mc, err := json.Marshal(s.ModelConfig)
	if err != nil {
		return nil, fmt.Errorf("encoding model_config: %w", err)
	}
	tr, err := json.Marshal(train)
	if err != nil {
		return nil, fmt.Errorf("encoding train: %w", err)
	}
	b, err := json.MarshalIndent(file{Version: Version, Model: s.Model, Preset: s.Preset, ModelConfig: mc,
		Objective: s.Objective, Data: s.Data, Train: tr}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Decode parses the content of config.json (version 1 or 2), checks the
// data spec and decodes the model's configuration through the model
// registry, before anything is allocated for it. It returns the spec and
// the raw train object. Unknown fields are errors; errors name the field.
func Decode(b []byte) (Spec, json.RawMessage, error) {
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Spec{}, nil, fmt.Errorf("not valid JSON: %w", err)
	}
	switch {
	case v.Version == nil:
		return Spec{}, nil, errors.New("no version field")
	case *v.Version == 1:
		return decodeV1(b)
	case *v.Version != Version:
		return Spec{}, nil, fmt.Errorf("unsupported version %d (this flowood reads versions 1 and %d)", *v.Version, Version)
	}
	var f file
	if err := jsonstrict.Decode(b, &f); err != nil {
		return Spec{}, nil, err
	}
	if err := f.Data.Validate(); err != nil {
		return Spec{}, nil, err
	}
	e, err := model.Lookup(f.Model)
	if err != nil {
		return Spec{}, nil, fmt.Errorf("model: %w", err)
	}
	cfg, err := e.DecodeConfig(f.ModelConfig, f.Data.Shape)
	if err != nil {
		return Spec{}, nil, err
	}
	return Spec{Model: f.Model, Preset: f.Preset, ModelConfig: cfg, Objective: f.Objective, Data: f.Data}, f.Train, nil
}

// decodeV1 reads a version 1 configuration: a RealNVP on images whose
// shape is the model's.
func decodeV1(b []byte) (Spec, json.RawMessage, error) {
	var f fileV1
	if err := jsonstrict.Decode(b, &f); err != nil {
		return Spec{}, nil, fmt.Errorf("version 1: %w", err)
	}
	if f.Model != "realnvp" {
		return Spec{}, nil, fmt.Errorf("version 1: model %q (version 1 run folders hold only realnvp models)", f.Model)
	}
	var rc realnvp.Config
	if len(f.RealNVP) > 0 {
		if err := jsonstrict.Decode(f.RealNVP, &rc); err != nil {
			return Spec{}, nil, fmt.Errorf("version 1: realnvp: %w", err)
		}
	}
	rc = rc.WithDefaults()
	d := Data{Name: f.Data.Name, Shape: datakind.ImageShape(rc.Height, rc.Width, rc.Channels), Embedded: f.Data.Embedded,
		TrainLimit: f.Data.TrainLimit, Subset: SubsetFirst}
	if err := d.Validate(); err != nil {
		return Spec{}, nil, fmt.Errorf("version 1: realnvp: %w", err)
	}
	e, err := model.Lookup("realnvp")
	if err != nil {
		return Spec{}, nil, err
	}
	cfg, err := e.DecodeConfig(f.RealNVP, d.Shape)
	if err != nil {
		return Spec{}, nil, fmt.Errorf("version 1: %w", err)
	}
	return Spec{Model: f.Model, Preset: f.Preset, ModelConfig: cfg, Data: d}, f.Train, nil
}

// Read reads and decodes RUN/config.json (see Decode). Errors name the
// file.
func Read(run string) (Spec, json.RawMessage, error) {
	path := filepath.Join(run, FileName)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Spec{}, nil, fmt.Errorf("%s is not a run folder: %s does not exist", run, path)
	}
	if err != nil {
		return Spec{}, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return Spec{}, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxFileSize {
		return Spec{}, nil, fmt.Errorf("reading %s: larger than %d bytes, not a run configuration", path, maxFileSize)
	}
	s, tr, err := Decode(b)
	if err != nil {
		return Spec{}, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return s, tr, nil
}

// Exists reports whether run holds a run: its config.json, its
// checkpoint folder or its training log.
func Exists(run string) bool {
	for _, p := range []string{FileName, "checkpoint", "train-log.csv"} {
		if _, err := os.Lstat(filepath.Join(run, p)); err == nil {
			return true
		}
	}
	return false
}
