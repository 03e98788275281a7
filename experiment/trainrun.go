package experiment

import (
	"context"

	"encoding/json"
	"fmt"
	"io"

	"github.com/flowood/flowood/data"

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
	testSet, err := LoadData(rc.Data.Name, testSplit(rc.Data.Name), rc.Data.Embedded, m.Height, m.Width, m.Channels)
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
	r := &train.Run{
		Model:       rc.BuildModel(),
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

// testSplit is the held-out split of a dataset: "test", else "val", else
// the only split there is (CelebA's subset has just "train"; as an OOD set
// it was never trained on).
func testSplit(name string) string {
	splits, err := data.Splits(name)
	if err != nil {
		return "test"
	}
	for _, s := range splits {
		if s == "test" {
			return s
		}
	}
	for _, s := range splits {
		if s == "val" {
			return s
		}
	}
	if len(splits) > 0 {
		return splits[0]
	}
	return "test"
}
