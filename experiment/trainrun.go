package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// Train trains the model described by rc into the run folder, writing
// config.json first. With resume it continues from the run's latest
// checkpoint (rc must then be the run's config.json, read with
// ReadRunConfig, changed at most in its length and learning rate).
func Train(ctx context.Context, rc RunConfig, run string, resume bool, progress io.Writer) (train.Result, error) {
	if err := rc.Resolve(); err != nil {
		return train.Result{}, err
	}
	m := rc.RealNVP
	trainSet, err := LoadData(rc.Data.Name, "train", rc.Data.Embedded, m.Height, m.Width, m.Channels)
	if err != nil {
		return train.Result{}, fmt.Errorf("loading training data: %w", err)
	}
	if rc.Data.TrainLimit > 0 {
		trainSet = trainSet.Head(rc.Data.TrainLimit)
	}
	split, err := heldOutSplit(rc.Data.Name)
	if err != nil {
		return train.Result{}, err
	}
	testSet, err := LoadData(rc.Data.Name, split, rc.Data.Embedded, m.Height, m.Width, m.Channels)
	if err != nil {
		return train.Result{}, fmt.Errorf("loading test data: %w", err)
	}
	if trainSet.H != m.Height || trainSet.W != m.Width || trainSet.C != m.Channels {
		return train.Result{}, fmt.Errorf("dataset %s has %dx%dx%d images, model expects %dx%dx%d",
			rc.Data.Name, trainSet.H, trainSet.W, trainSet.C, m.Height, m.Width, m.Channels)
	}
	// On resume too: flags may have changed the length or learning rate.
	if err := rc.Write(run); err != nil {
		return train.Result{}, err
	}
	mc, _ := json.Marshal(rc)
	model := rc.BuildModel()
	par, err := DataParallel(model)
	if err != nil {
		return train.Result{}, err
	}
	r := &train.Run{
		Model:       model,
		Parallel:    par,
		Config:      rc.Train,
		Train:       trainSet,
		Test:        testSet,
		Dir:         run,
		Resume:      resume,
		Progress:    progress,
		ModelConfig: mc,
	}
	return r.Execute(ctx)
}

// heldOutSplit returns the split that a model trained on the "train"
// split of data set name is tested on: "test", else "val". It never
// falls back to "train", which would score the model on its own training
// data; loading a split that is not to be had here fails with an error
// that says where it was looked for.
func heldOutSplit(name string) (string, error) {
	splits, err := data.Splits(name)
	if err != nil {
		return "", err
	}
	for _, want := range []string{"test", "val"} {
		if slices.Contains(splits, want) {
			return want, nil
		}
	}
	return "", fmt.Errorf("dataset %s has no test or val split to evaluate on", name)
}

// oodSplit returns the split of data set name to score as out-of-
// distribution data: "test", else "val", unless neither can be had here
// (not present locally and not downloadable; a split whose files are
// present but fail their checks counts as present, so the error shows);
// then the first split that can, since a model trained on another data
// set never saw any split of this one. (CelebA's test split exists only
// in its canonical full-size form; a mirror that holds just the 10k
// training subset is scored on that.)
func oodSplit(name string, embedded bool) string {
	splits, err := data.Splits(name)
	if err != nil || len(splits) == 0 {
		return "test"
	}
	var order []string
	for _, want := range []string{"test", "val"} {
		if slices.Contains(splits, want) {
			order = append(order, want)
		}
	}
	for _, s := range splits {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	if embedded {
		return order[0]
	}
	for _, s := range order {
		st := data.Status(name, s, data.Options{}, false)
		if st.Where != data.WhereNotAvailable || st.Err != nil {
			return s
		}
	}
	return order[0]
}

// DataParallel returns a train.Parallel with a replica of m per core, or
// nil where data-parallel training does not apply or does not pay: on one
// core, for models that recompute activations in the backward pass, and
// for st-networks of 64 hidden channels or more, whose operations keep
// the cores busy when split (the paper preset, batch 32 on 2 cores,
// measured 10.3 img/s data-parallel against 10.5-10.8 without, and 15%
// more peak memory; the cpu preset, 16 channels, 240 -> 280 img/s).
func DataParallel(m *realnvp.Model) (*train.Parallel, error) {
	k := kernels.Workers()
	if k < 2 || m.Config.Recompute == "on" || m.Config.Mid >= 64 {
		return nil, nil
	}
	g := tensor.NewGroup(k)
	reps, err := m.Replicas(g)
	if err != nil {
		return nil, err
	}
	return train.NewParallel(m, reps, g)
}
