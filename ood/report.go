package ood

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ErrNaNScore is wrapped by the error Evaluate returns when a score is NaN.
var ErrNaNScore = errors.New("score is NaN")

// ErrEmpty is wrapped by the error Evaluate returns when a score set is
// empty.
var ErrEmpty = errors.New("no scores")

// Report holds the standard OOD detection metrics for one
// in-distribution/OOD pair, in the convention described in the package
// documentation.
type Report struct {
	// AUROC is the area under the ROC curve (see AUROC).
	AUROC float64 `json:"auroc"`
	// AUPRIn is the average precision with in-distribution positive (see
	// AUPRIn).
	AUPRIn float64 `json:"aupr_in"`
	// AUPROut is the average precision with OOD positive (see AUPROut).
	AUPROut float64 `json:"aupr_out"`
	// FPRAt95TPR is the OOD acceptance rate at 95% in-distribution
	// acceptance (see FPRAt95TPR).
	FPRAt95TPR float64 `json:"fpr_at_95_tpr"`
	// NIn is the number of in-distribution scores.
	NIn int `json:"n_in"`
	// NOut is the number of OOD scores.
	NOut int `json:"n_out"`

	// The 95% bootstrap intervals of the four metrics (Bootstrap), set by
	// EvaluateCI; nil from Evaluate.
	AUROCCI   *Interval `json:"auroc_ci,omitempty"`
	AUPRInCI  *Interval `json:"aupr_in_ci,omitempty"`
	AUPROutCI *Interval `json:"aupr_out_ci,omitempty"`
	FPRCI     *Interval `json:"fpr_at_95_tpr_ci,omitempty"`
	// Replicates is the number of bootstrap replicates of the intervals.
	Replicates int `json:"bootstrap_replicates,omitempty"`
}

// Interval is a confidence interval [lo, hi].
type Interval [2]float64

// EvaluateCI is Evaluate with a 95% percentile bootstrap interval for each
// metric from n replicates (Bootstrap, stratified), drawn from rng.
func EvaluateCI(in, out []float64, n int, rng *rand.Rand) (Report, error) {
	r, err := Evaluate(in, out)
	if err != nil {
		return r, err
	}
	ci := func(metric func(in, out []float64) float64) *Interval {
		lo, hi := Bootstrap(in, out, metric, n, rng)
		return &Interval{lo, hi}
	}
	r.AUROCCI, r.AUPRInCI, r.AUPROutCI, r.FPRCI = ci(AUROC), ci(AUPRIn), ci(AUPROut), ci(FPRAt95TPR)
	r.Replicates = n
	return r, nil
}

// Evaluate computes all metrics of Report for in-distribution scores in and
// OOD scores out. Scores of -Inf and +Inf are accepted and rank below and
// above every finite score respectively. Evaluate returns an error wrapping
// ErrEmpty if either set is empty and an error wrapping ErrNaNScore, naming
// the set and index, if any score is NaN.
func Evaluate(in, out []float64) (Report, error) {
	if err := check("in-distribution", in); err != nil {
		return Report{}, fmt.Errorf("ood: evaluating metrics: %w", err)
	}
	if err := check("OOD", out); err != nil {
		return Report{}, fmt.Errorf("ood: evaluating metrics: %w", err)
	}
	return Report{
		AUROC:      AUROC(in, out),
		AUPRIn:     AUPRIn(in, out),
		AUPROut:    AUPROut(in, out),
		FPRAt95TPR: FPRAt95TPR(in, out),
		NIn:        len(in),
		NOut:       len(out),
	}, nil
}

// check returns an error if x is empty or contains a NaN.
func check(name string, x []float64) error {
	if len(x) == 0 {
		return fmt.Errorf("%s set: %w", name, ErrEmpty)
	}
	for i, v := range x {
		if math.IsNaN(v) {
			return fmt.Errorf("%s score %d: %w", name, i, ErrNaNScore)
		}
	}
	return nil
}
