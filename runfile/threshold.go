package runfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/flowood/flowood/internal/atomicfile"
	"github.com/flowood/flowood/internal/jsonfloat"
)

// ThresholdFile is where a run's calibrated OOD threshold is kept,
// relative to the run folder.
const ThresholdFile = "eval/threshold.json"

// ThresholdRule states how Threshold.LogLikelihood was chosen and is
// applied; it is written into threshold.json.
const ThresholdRule = "an input is OOD when its log-likelihood is below log_likelihood; log_likelihood is the k-th " +
	"largest of the n in-distribution log-likelihoods, k the smallest integer with k/n >= tpr (no interpolation), " +
	"so that at least tpr of them are accepted (ood.AcceptThreshold)"

// Threshold is RUN/eval/threshold.json: the log-likelihood below which
// an input is called out-of-distribution, calibrated by flowood eval so
// that a fraction TPR of held-out in-distribution data is accepted.
type Threshold struct {
	// LogLikelihood is the threshold in nats (the eval convention: the
	// density of dequantised pixels on [0, 1)^D for images). It may be
	// -Inf (written "-Inf") where in-distribution scores are.
	LogLikelihood jsonfloat.Float `json:"log_likelihood"`
	// PerDim is LogLikelihood in the per-dimension unit of Unit.
	PerDim jsonfloat.Float `json:"per_dim"`
	Unit   string          `json:"unit"`
	// TPR is the fraction of in-distribution data accepted, 0.95.
	TPR float64 `json:"tpr"`
	// Dataset and Split are the in-distribution data calibrated on; N is
	// the number of examples scored, Limit and SubsetSeed the random
	// subset they were (Limit 0: the whole split).
	Dataset    string `json:"dataset"`
	Split      string `json:"split"`
	N          int    `json:"n"`
	Limit      int    `json:"limit"`
	SubsetSeed uint64 `json:"subset_seed"`
	// Checkpoint is the checkpoint scored: "best" or "latest".
	Checkpoint string `json:"checkpoint"`
	// Rule is ThresholdRule.
	Rule string `json:"rule"`
}

// WriteThreshold writes t to RUN/eval/threshold.json atomically (readers
// see the old file or the new one, never a mix).
func WriteThreshold(run string, t Threshold) error {
	path := filepath.Join(run, ThresholdFile)
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFile(path, append(b, '\n'))
}

// writeFile writes b to path atomically, making its folder if needed.
func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ErrNoThreshold is wrapped by the error ReadThreshold returns for a run
// that flowood eval has not calibrated.
var ErrNoThreshold = errors.New("no calibrated threshold (run flowood eval)")

// ReadThreshold reads RUN/eval/threshold.json.
func ReadThreshold(run string) (Threshold, error) {
	path := filepath.Join(run, ThresholdFile)
	var t Threshold
	if err := readJSON(path, ErrNoThreshold, &t); err != nil {
		return Threshold{}, err
	}
	if !(t.TPR > 0 && t.TPR <= 1) {
		return Threshold{}, fmt.Errorf("reading %s: tpr %v not in (0, 1]", path, t.TPR)
	}
	return t, nil
}

// readJSON decodes the JSON file path into v; a missing file is an error
// wrapping missing.
func readJSON(path string, missing error, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w", path, missing)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}
