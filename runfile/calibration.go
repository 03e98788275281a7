package runfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/flowood/flowood/internal/jsonfloat"
)

// CalibrationFile is where flowood eval records every score it computed
// with its calibrated threshold and what a scorer needs to recompute the
// score for new inputs (reference runs, the training mean, a fitted
// state), relative to the run folder. Runs evaluated before it existed
// have only ThresholdFile (the log-likelihood's threshold).
const CalibrationFile = "eval/thresholds.json"

// CalibrationVersion is the version of CalibrationFile's format.
const CalibrationVersion = 1

// Calibration is RUN/eval/thresholds.json: per score, the threshold at
// which a fraction TPR of held-out in-distribution data is accepted
// (every score is higher = more in-distribution; an input is OOD by a
// score when it is below that score's threshold), chosen by
// ThresholdRule, and what recomputing the score needs.
type Calibration struct {
	Version int `json:"version"`
	// TPR, Dataset, Split, N, Limit, SubsetSeed and Checkpoint are as in
	// Threshold: what every score was calibrated on.
	TPR        float64 `json:"tpr"`
	Dataset    string  `json:"dataset"`
	Split      string  `json:"split"`
	N          int     `json:"n"`
	Limit      int     `json:"limit"`
	SubsetSeed uint64  `json:"subset_seed"`
	Checkpoint string  `json:"checkpoint"`
	// ModelSHA256 is the SHA-256 of the checkpoint's weights file
	// (checkpoint/CHECKPOINT/model.safetensors) when evaluated: a model
	// trained further since has other weights, and these thresholds
	// are not its own.
	ModelSHA256 string `json:"model_sha256"`
	// Dequantization states how images were dequantised for scoring.
	Dequantization string `json:"dequantization,omitempty"`
	Rule           string `json:"rule"`
	// Scores holds every score computed, in scores.csv's column order,
	// loglik first.
	Scores []ScoreCalibration `json:"scores"`
}

// ScoreCalibration is one score's calibration.
type ScoreCalibration struct {
	// Name is the score's name (flowood eval --score: loglik, ic, ...).
	Name string `json:"name"`
	// Threshold is the score below which an input is OOD; it may be
	// -Inf (written "-Inf").
	Threshold jsonfloat.Float `json:"threshold"`
	// Doc says what the score is.
	Doc string `json:"doc,omitempty"`
	// TrainMean is the mean log-likelihood of the training examples
	// scored (typicality's reference).
	TrainMean *jsonfloat.Float `json:"train_mean,omitempty"`
	// Coder is the lossless coder of an input-complexity score (png,
	// lzma; ood.CompressedBits).
	Coder string `json:"coder,omitempty"`
	// References are the other runs whose models the score evaluates:
	// the background run of lr, the general-domain run of general, the
	// ensemble members of waic (beside this run, the first member).
	References []Reference `json:"references,omitempty"`
	// State is the file, relative to the run folder, of a fitted state
	// (DoSE's densities, eval/dose.json).
	State string `json:"state,omitempty"`
}

// Reference is a run folder that a score needs, recorded both relative to
// the run folder (found there first, so that runs moved together keep
// working) and as an absolute path.
type Reference struct {
	Role       string `json:"role"`
	Path       string `json:"path"`
	Abs        string `json:"abs"`
	Checkpoint string `json:"checkpoint"`
	// ModelSHA256 is the SHA-256 of the reference's weights file when
	// evaluated.
	ModelSHA256 string `json:"model_sha256"`
}

// NewReference records the run folder ref, whose checkpoint ck was
// scored, as a reference of the run folder run.
func NewReference(run, ref, role, ck, weightsFile string) (Reference, error) {
	abs, err := filepath.Abs(ref)
	if err != nil {
		return Reference{}, fmt.Errorf("recording reference %s: %w", ref, err)
	}
	absRun, err := filepath.Abs(run)
	if err != nil {
		return Reference{}, fmt.Errorf("recording reference %s: %w", ref, err)
	}
	rel, err := filepath.Rel(absRun, abs)
	if err != nil {
		rel = abs
	}
	sum, err := FileSHA256(filepath.Join(abs, "checkpoint", ck, weightsFile))
	if err != nil {
		return Reference{}, fmt.Errorf("recording reference %s: %w", ref, err)
	}
	return Reference{Role: role, Path: filepath.ToSlash(rel), Abs: abs, Checkpoint: ck, ModelSHA256: sum}, nil
}

// Locate returns the folder of the reference r of the run folder run: r's
// path relative to run when a run folder is there, else its absolute
// path. The error names both places when neither holds a run.
func (r Reference) Locate(run string) (string, error) {
	rel := filepath.Join(run, filepath.FromSlash(r.Path))
	if filepath.IsAbs(filepath.FromSlash(r.Path)) {
		rel = filepath.FromSlash(r.Path)
	}
	for _, dir := range []string{rel, r.Abs} {
		if dir != "" && Exists(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("the %s run recorded in %s is missing: no run folder at %s (relative to the run) nor at %s; "+
		"put it back or rerun flowood eval", r.Role, filepath.Join(run, CalibrationFile), rel, r.Abs)
}

// Score returns the calibration of the score name, if recorded.
func (c *Calibration) Score(name string) (ScoreCalibration, bool) {
	i := slices.IndexFunc(c.Scores, func(s ScoreCalibration) bool { return s.Name == name })
	if i < 0 {
		return ScoreCalibration{}, false
	}
	return c.Scores[i], true
}

// Names returns the names of the scores calibrated, in order.
func (c *Calibration) Names() []string {
	out := make([]string, len(c.Scores))
	for i, s := range c.Scores {
		out[i] = s.Name
	}
	return out
}

// WriteCalibration writes c to RUN/eval/thresholds.json atomically.
func WriteCalibration(run string, c Calibration) error {
	path := filepath.Join(run, CalibrationFile)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the rule's ">=" as written
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFile(path, buf.Bytes())
}

// ErrNoCalibration is wrapped by the error ReadCalibration returns for a
// run without thresholds.json (not evaluated, or evaluated by an older
// flowood).
var ErrNoCalibration = errors.New("no per-score calibration (run flowood eval)")

// ReadCalibration reads RUN/eval/thresholds.json and checks it: a known
// version, a TPR in (0, 1], no threshold NaN, no score twice.
func ReadCalibration(run string) (Calibration, error) {
	path := filepath.Join(run, CalibrationFile)
	var c Calibration
	if err := readJSON(path, ErrNoCalibration, &c); err != nil {
		return Calibration{}, err
	}
	if c.Version != CalibrationVersion {
		return Calibration{}, fmt.Errorf("reading %s: version %d, this flowood reads version %d", path, c.Version, CalibrationVersion)
	}
	if !(c.TPR > 0 && c.TPR <= 1) {
		return Calibration{}, fmt.Errorf("reading %s: tpr %v not in (0, 1]", path, c.TPR)
	}
	seen := map[string]bool{}
	for _, s := range c.Scores {
		switch {
		case s.Name == "":
			return Calibration{}, fmt.Errorf("reading %s: a score without a name", path)
		case seen[s.Name]:
			return Calibration{}, fmt.Errorf("reading %s: score %s twice", path, s.Name)
		case s.Threshold != s.Threshold:
			return Calibration{}, fmt.Errorf("reading %s: score %s: the threshold is NaN", path, s.Name)
		}
		seen[s.Name] = true
	}
	return c, nil
}

// FileSHA256 returns the hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
