package main

import (
	"fmt"
	"math"
	"strconv"

	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/train"
)

// checkNegativeFlags refuses the negative-training flags that make no
// sense: a threshold or weight without --negative-data, a non-finite
// threshold, a weight that is not positive.
func checkNegativeFlags(set map[string]bool, negData string, threshold, weight float64) error {
	if negData == "" {
		for _, f := range []string{"negative-threshold", "negative-weight"} {
			if set[f] && !set["resume"] {
				return fmt.Errorf("train: --%s is for negative training: give --negative-data too", f)
			}
		}
	}
	if set["negative-threshold"] && (math.IsNaN(threshold) || math.IsInf(threshold, 0)) {
		return fmt.Errorf("train: --negative-threshold %v must be a finite number (the paper uses -30000 for grayscale, -100000 for colour)", threshold)
	}
	if set["negative-weight"] && !(weight > 0) {
		return fmt.Errorf("train: --negative-weight %v must be positive", weight)
	}
	return nil
}

// setNegative makes rc's objective negative training when negData is
// given (Resolve fills the defaults and checks the data set).
func setNegative(rc *experiment.RunConfig, negData string, threshold, weight float64) {
	if negData == "" {
		return
	}
	rc.Objective.Name = train.Negative{}.Name()
	rc.Objective.NegativeData = negData
	if !math.IsNaN(threshold) {
		c := threshold
		rc.Objective.NegativeThreshold = &c
	}
	rc.Objective.NegativeWeight = weight
}

// sameNegative returns an error naming the first negative-training flag
// in set that differs from the resumed run's objective.
func sameNegative(rc experiment.RunConfig, set map[string]bool, negData string, threshold, weight float64) error {
	o := rc.Objective
	differs := func(flag string, given, run any) error {
		return fmt.Errorf("--%s %v differs from the run's %v (config.json objective): a resumed run keeps its objective; "+
			"leave --%s out, or train a new run into another --out", flag, given, run, flag)
	}
	if set["negative-data"] && negData != o.NegativeData {
		run := any(o.NegativeData)
		if o.NegativeData == "" {
			run = "none (objective " + o.Name + ")"
		}
		return differs("negative-data", negData, run)
	}
	if set["negative-threshold"] && (o.NegativeThreshold == nil || threshold != *o.NegativeThreshold) {
		run := any("none")
		if o.NegativeThreshold != nil {
			run = *o.NegativeThreshold
		}
		return differs("negative-threshold", threshold, run)
	}
	if set["negative-weight"] && weight != o.NegativeWeight {
		return differs("negative-weight", weight, o.NegativeWeight)
	}
	return nil
}

// optionalFloat is a float flag that may be left unset (NaN), shown
// without a default in the help.
type optionalFloat struct {
	v   float64
	set bool
}

func (f *optionalFloat) String() string {
	if f == nil || !f.set {
		return ""
	}
	return strconv.FormatFloat(f.v, 'g', -1, 64)
}

func (f *optionalFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("want a number")
	}
	f.v, f.set = v, true
	return nil
}

// value returns the flag's value, NaN when unset.
func (f *optionalFloat) value() float64 {
	if !f.set {
		return math.NaN()
	}
	return f.v
}
