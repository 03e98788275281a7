package experiment

import (
	"context"
	"slices"

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

// testSplit returns the split of data set name to evaluate on: "test",
// else "val", else the first, preferring among them one whose files are
// present locally (cache, mirror, Debian) to one that would have to be
// downloaded, and that to one not available at all. (CelebA's test split
// exists only in the canonical full-size form; a mirror that holds just
// the 10k training subset is evaluated on that.)
func testSplit(name string) string {
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
	best, bestRank := order[0], 3
	for _, s := range order {
		rank := 0 // present locally
		switch data.Status(name, s, data.Options{}, false).Where {
		case data.WhereNotAvailable:
			rank = 2
		case data.WhereDownload:
			rank = 1
		}
		if rank < bestRank {
			best, bestRank = s, rank
		}
	}
	return best
}
