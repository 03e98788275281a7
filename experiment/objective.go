package experiment

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/train"
)

// Paper thresholds of negative training (App. D): c = -30000 for the
// MNIST-like data sets (28x28 grayscale), -100000 for colour ones, in the
// paper's scale (train.Negative).
const (
	NegativeThresholdGray   = -30000.0
	NegativeThresholdColour = -100000.0
)

// DefaultNegativeThreshold returns the paper's c for data of shape s:
// NegativeThresholdColour for colour images, else NegativeThresholdGray.
func DefaultNegativeThreshold(s datakind.Shape) float64 {
	if s.Kind == datakind.Image && s.Channels == 3 {
		return NegativeThresholdColour
	}
	return NegativeThresholdGray
}

// resolveObjective fills the objective's defaults (the name
// "likelihood"; for "negative" the paper's threshold for the data's shape
// and the weight 1) and checks that its fields fit its name and the data:
// the negative set must be a dataset of the run's kind (images are
// converted to the run's shape on loading, as OOD sets in evaluation are;
// a tabular set must have the run's number of features, which loading
// checks). Errors name the field of config.json.
func resolveObjective(o *runfile.Objective, d runfile.Data) error {
	if o.Name == "" {
		o.Name = train.MaxLikelihood{}.Name()
	}
	if _, err := train.NewObjective(o.Name); err != nil {
		return fmt.Errorf("objective: %w", err)
	}
	if o.Name != (train.Negative{}).Name() {
		if o.NegativeData != "" || o.NegativeThreshold != nil || o.NegativeWeight != 0 {
			return fmt.Errorf("objective: negative_data, negative_threshold and negative_weight are for the objective %q, not %q", "negative", o.Name)
		}
		return nil
	}
	if o.NegativeData == "" {
		return fmt.Errorf("objective negative: negative_data (the dataset whose likelihood is pushed down) is missing")
	}
	if _, err := data.Splits(o.NegativeData); err != nil {
		return fmt.Errorf("objective negative: negative_data: %w", err)
	}
	if tab := data.IsTabular(o.NegativeData); tab != (d.Kind == datakind.Tabular) {
		kind := "an image dataset"
		if tab {
			kind = "tabular"
		}
		return fmt.Errorf("objective negative: negative_data %s is %s, the run's data are %s", o.NegativeData, kind, d.Shape)
	}
	if o.NegativeThreshold == nil {
		c := DefaultNegativeThreshold(d.Shape)
		o.NegativeThreshold = &c
	}
	if c := *o.NegativeThreshold; math.IsNaN(c) || math.IsInf(c, 0) {
		return fmt.Errorf("objective negative: negative_threshold %v must be finite", c)
	}
	if o.NegativeWeight == 0 {
		o.NegativeWeight = 1
	}
	if w := o.NegativeWeight; !(w > 0) || math.IsInf(w, 0) {
		return fmt.Errorf("objective negative: negative_weight %v must be positive and finite", w)
	}
	return nil
}

// buildObjective returns the run's objective, loading the negative set of
// "negative" (its train split, converted and limited as the training set
// is: see runfile.Objective).
func buildObjective(rc RunConfig) (train.Objective, error) {
	obj, err := train.NewObjective(rc.Objective.Name)
	if err != nil {
		return nil, err
	}
	if _, ok := obj.(train.Negative); !ok {
		return obj, nil
	}
	name := rc.Objective.NegativeData
	neg, err := LoadExamples(rc.Data, name, "train")
	if err != nil {
		return nil, fmt.Errorf("loading negative data (its train split): %w", err)
	}
	neg, _ = limitExamples(neg, rc.Data.TrainLimit, rc.Data.Subset == runfile.SubsetFirst, rc.Data.SubsetSeed)
	return train.Negative{Data: neg, Threshold: *rc.Objective.NegativeThreshold, Weight: rc.Objective.NegativeWeight}, nil
}
