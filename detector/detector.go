// Package detector is flowood's library face for deployment: it loads a
// trained run folder (written by `flowood train` and `flowood eval`) and
// scores images for out-of-distribution detection. A Detector is safe for
// concurrent use: any number of goroutines may call Score at once, and an
// image gets the same score, bit for bit, whatever the batch or goroutine
// it arrives in.
//
// Scores follow flowood's evaluation convention: LogLikelihood is log p(u)
// in nats of the dequantised pixels u = (x + e)/256 on [0, 1)^D, higher =
// more in-distribution; BitsPerDim = -(log p(u) - D ln 256)/(D ln 2).
// The dequantisation noise e is uniform on [0, 1) as in evaluation, drawn
// from a generator seeded by the image's own pixels, so that the score is
// a function of the image alone.
//
// Beyond the likelihood, a Detector computes the other OOD scores of
// flowood eval (ScoreNames): by default every score the run's evaluation
// calibrated (CalibrationFile), each with its threshold, loading the
// reference runs and fitted state the evaluation recorded; an image's
// scores equal those eval wrote in scores.csv for it, bit for bit.
//
// Importing detector does not pull in plotting, the training loop or the
// dataset downloaders.
package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"

	"github.com/flowood/flowood/data/pixels"
	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// Result is the score of one image.
type Result struct {
	// LogLikelihood is log p(u) in nats (higher = more in-distribution).
	LogLikelihood float64
	// BitsPerDim is the same likelihood in bits per dimension of the
	// discrete pixels (lower = more in-distribution).
	BitsPerDim float64
	// OOD is the decision of the primary score (Detector.Primary:
	// loglik unless Options.Primary chose another), OODBy[Primary()]; for
	// loglik it is LogLikelihood < Threshold(), calibrated or not.
	OOD bool
	// Scores holds every score computed (Detector.Scores), by the names
	// of ScoreNames, loglik included; each is higher = more
	// in-distribution and equals, for the same image, the value flowood
	// eval wrote in scores.csv.
	Scores map[string]float64
	// OODBy holds, for each score with a threshold
	// (Detector.Thresholds; loglik always), whether the image is below
	// it: OOD by that score.
	OODBy map[string]bool
	// Complexity is Scores["ic"], the input-complexity score of Serra et
	// al. (2020), LogLikelihood + L·ln 2 with L the image's PNG size in
	// bits (as the model sees it; ood.CompressedBits), higher = more
	// in-distribution: the score that separates FashionMNIST from MNIST
	// where the likelihood fails; NaN when not computed.
	Complexity float64
	// Typicality is Scores["typicality"], -|LogLikelihood - the mean
	// log-likelihood of training data| (Nalisnick et al. 2019); NaN when
	// not computed (the run's evaluation recorded no training mean).
	Typicality float64
}

// InputError is the error Score returns for an image it cannot score as
// given (of the wrong size, say): the caller's input is at fault, not the
// model. Index is the image's position in the call.
type InputError struct {
	Index int
	Err   error
}

func (e *InputError) Error() string { return fmt.Sprintf("detector: image %d: %v", e.Index, e.Err) }

// Unwrap returns the underlying error.
func (e *InputError) Unwrap() error { return e.Err }

// Detector scores images with a trained flow. Its methods are safe for
// concurrent use.
type Detector struct {
	model      model.Model
	h, w, c    int
	dataset    string
	threshold  float64
	calibrated bool
	checkpoint string
	modelName  string
	trainMean  float64 // NaN when unknown
	// scores are the scores computed, in ScoreNames order; thresholds
	// the calibrated ones; primary decides Result.OOD.
	scores     []string
	thresholds map[string]float64
	primary    string
	// refs holds the reference models of lr, general and waic; dose the
	// densities eval fitted.
	refs map[string][]*refModel
	dose *ood.DoSE
	// weights holds the Winograd transforms of the model's kernels, made
	// once by the first call that needs each and shared by every call
	// after (the model's weights never change here): scoring calls then
	// allocate only activations.
	weights *tensor.Pass
}

// ThresholdFile is the calibration `flowood eval` writes into a run
// folder (runfile.Threshold): the log-likelihood below which an input is
// called OOD, chosen to accept 95% of held-out in-distribution data.
const ThresholdFile = runfile.ThresholdFile

// Load reads the run folder runDir: its config.json, the weights of its
// best checkpoint (the latest when there is no best), and its calibration
// (CalibrationFile, or ThresholdFile from an older flowood) when it was
// calibrated on those weights (`flowood eval` scores the same checkpoint
// by default). It computes every score the calibration holds (see
// LoadWith). Without a calibration it computes the log-likelihood, whose
// threshold is then that of 8 bits per dimension, the uniform density on
// [0, 1)^D: an input is called OOD only when the model finds it less
// likely than uniform noise does (see Calibrated).
func Load(runDir string) (*Detector, error) { return LoadWith(runDir, Options{}) }

// CalibrationFile is where `flowood eval` records every score it
// computed with its calibrated threshold and what the detector needs to
// recompute it (runfile.Calibration).
const CalibrationFile = runfile.CalibrationFile

// Options select what a Detector computes beyond the log-likelihood.
type Options struct {
	// Scores lists the scores to compute (ScoreNames); loglik is always
	// computed. nil means every score the run's calibration holds
	// (CalibrationFile), or without one loglik and, when the run's
	// metrics.json gives the training mean, typicality. lr, waic and
	// general load the reference runs eval used, found relative to the
	// run folder first, then by their absolute path; they, dose, and
	// typicality without a training mean need the calibration, and
	// LoadWith returns an error wrapping ErrNotCalibrated without it.
	// Each costs about as much as it says in docs/serve.md: lr and
	// general a second model evaluation, waic one per ensemble member.
	Scores []string
	// Complexity adds ic to Scores: a PNG encoding of every image at
	// best compression, which costs about as much as a small model's
	// evaluation (docs/serve.md).
	Complexity bool
	// Primary is the score whose decision is Result.OOD (default
	// loglik). It must be among the scores computed, and a primary score
	// other than loglik must have a calibrated threshold.
	Primary string
}

// LoadWith is Load with options.
func LoadWith(runDir string, opt Options) (*Detector, error) {
	spec, _, err := runfile.Read(runDir)
	if err != nil {
		return nil, fmt.Errorf("detector: %w", err)
	}
	sh := spec.Data.Shape
	if sh.Kind != datakind.Image || (sh.Channels != 1 && sh.Channels != 3) {
		return nil, fmt.Errorf("detector: %s: the run models %s data, not grayscale or RGB images", runDir, sh.Kind)
	}
	d := &Detector{h: sh.Height, w: sh.Width, c: sh.Channels, dataset: spec.Data.Name, modelName: spec.Model}
	m, err := spec.NewModel(0)
	if err != nil {
		return nil, fmt.Errorf("detector: %s: %w", runDir, err)
	}
	for _, name := range []string{"best", "latest"} {
		dir := filepath.Join(runDir, "checkpoint", name)
		if _, err := os.Stat(filepath.Join(dir, checkpoint.ModelFile)); err != nil {
			continue
		}
		if err := checkpoint.LoadWeights(dir, m); err != nil {
			return nil, fmt.Errorf("detector: %w", err)
		}
		d.checkpoint = name
		break
	}
	if d.checkpoint == "" {
		return nil, fmt.Errorf("detector: %s has no checkpoint (no %s under checkpoint/best or checkpoint/latest)", runDir, checkpoint.ModelFile)
	}
	m.SetTraining(false)
	d.model = m
	d.weights = tensor.NewPass(tensor.PassOptions{CacheWeights: true})
	d.threshold = d.uniformThreshold()
	if err := d.readThreshold(runDir); err != nil {
		return nil, err
	}
	d.trainMean = readTrainMean(runDir)
	if err := d.setupScores(runDir, opt); err != nil {
		return nil, err
	}
	return d, nil
}

// readTrainMean returns the mean training log-likelihood that flowood
// eval recorded in RUN/eval/metrics.json, or NaN.
func readTrainMean(run string) float64 {
	b, err := os.ReadFile(filepath.Join(run, "eval", "metrics.json"))
	if err != nil {
		return math.NaN()
	}
	var m struct {
		Train *struct {
			MeanLogLik json.Number `json:"mean_log_likelihood"`
		} `json:"train"`
	}
	if json.Unmarshal(b, &m) != nil || m.Train == nil {
		return math.NaN()
	}
	v, err := m.Train.MeanLogLik.Float64()
	if err != nil {
		return math.NaN()
	}
	return v
}

// Threshold returns the log-likelihood (nats) below which Score calls an
// input OOD: calibrated at 95% TPR on held-out in-distribution data when
// `flowood eval` ran, the uniform density's (0 nats, 8 bits/dim)
// otherwise.
func (d *Detector) Threshold() float64 { return d.threshold }

// Calibrated reports whether Threshold comes from the run's calibration.
func (d *Detector) Calibrated() bool { return d.calibrated }

// Model returns the name of the run's model (realnvp, glow, ...).
func (d *Detector) Model() string { return d.modelName }

// Checkpoint names the checkpoint loaded: "best" or "latest".
func (d *Detector) Checkpoint() string { return d.checkpoint }

// Shape returns the height, width and channels the model scores; Score
// converts images to it (see Score).
func (d *Detector) Shape() (h, w, c int) { return d.h, d.w, d.c }

// Score returns the score of each image. Images are converted as the
// run's training data were: to grayscale or RGB as the model expects
// (ITU-R 601 luma for grayscale), and for a CelebA run centre-cropped to a
// square and resized; other runs take images of exactly the model's size,
// and any other size is an *InputError naming the image. Cancelling ctx stops
// the work between chunks of images and returns ctx's error.
func (d *Detector) Score(ctx context.Context, imgs []image.Image) ([]Result, error) {
	dim := d.h * d.w * d.c
	u := make([]float32, len(imgs)*dim)
	pxs := make([][]uint8, len(imgs))
	for i, img := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		px, err := d.prepare(img)
		if err != nil {
			return nil, &InputError{Index: i, Err: err}
		}
		pxs[i] = px
		pixels.Dequantize(u[i*dim:(i+1)*dim], px, pixels.ImageNoise(px))
	}
	ll, err := d.logProb(ctx, u, len(imgs))
	if err != nil {
		return nil, err
	}
	scores, err := d.computeScores(ctx, u, len(imgs), pxs, ll)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(imgs))
	for i, v := range ll {
		r := Result{LogLikelihood: v, BitsPerDim: bitsPerDim(v, dim), Complexity: math.NaN(), Typicality: math.NaN(),
			Scores: make(map[string]float64, len(d.scores)), OODBy: make(map[string]bool, len(d.thresholds))}
		for _, name := range d.scores {
			x := scores[name][i]
			r.Scores[name] = x
			if t, ok := d.thresholds[name]; ok {
				r.OODBy[name] = x < t
			}
		}
		r.OODBy["loglik"] = v < d.threshold
		r.OOD = r.OODBy[d.primary]
		if x, ok := r.Scores["ic"]; ok {
			r.Complexity = x
		}
		if x, ok := r.Scores["typicality"]; ok {
			r.Typicality = x
		}
		out[i] = r
	}
	return out, nil
}

// logProb evaluates n dequantised images u in chunks
// (flow.LogProbChunks: single-threaded passes spread over the cores, every
// chunk the same size, so an image's score does not depend on the others
// in its call), in passes that share the detector's weight transforms.
func (d *Detector) logProb(ctx context.Context, u []float32, n int) ([]float64, error) {
	lp, err := flow.LogProbChunks(ctx, d.weights, d.model.LogProb, u, []int{n, d.h, d.w, d.c}, 0)
	if err != nil {
		return nil, err
	}
	out := make([]float64, n)
	for i, v := range lp {
		if math.IsNaN(float64(v)) {
			return nil, fmt.Errorf("detector: image %d has a NaN log-likelihood", i)
		}
		out[i] = float64(v)
	}
	return out, nil
}

// bitsPerDim converts a log-density of dequantised pixels into bits per
// dimension of the discrete data (as ood.BitsPerDim).
func bitsPerDim(logProb float64, d int) float64 {
	return -(logProb - float64(d)*math.Log(256)) / (float64(d) * math.Ln2)
}

// prepare returns img's pixels in the model's shape, converted as the
// run's data were.
func (d *Detector) prepare(img image.Image) ([]uint8, error) {
	if img == nil {
		return nil, errors.New("nil image")
	}
	px, h, w, c := pixels.FromImage(img)
	if h == 0 || w == 0 {
		return nil, fmt.Errorf("empty image (%dx%d)", h, w)
	}
	switch {
	case d.c == 1 && c != 1:
		px = pixels.Grayscale(px, h*w, c)
	case d.c == 3 && c != 3:
		px = pixels.RGB(px, h*w, c)
	}
	c = d.c
	if h == d.h && w == d.w {
		return px, nil
	}
	if d.dataset != "celeba" {
		return nil, fmt.Errorf("image is %dx%d, the model scores %dx%d images (%s)", w, h, d.w, d.h, d.dataset)
	}
	// CelebA: the central square of the face, 74/89 of the aligned
	// image's width (74x74 of the 89x109 mirror, 148x148 of the 178x218
	// original), resized to the model's size.
	side := int(math.Round(float64(w) * 74 / 89))
	if side < 1 || side > h {
		return nil, fmt.Errorf("image is %dx%d, too small to crop a CelebA face from", w, h)
	}
	px, err := pixels.CenterCrop(px, h, w, c, side, side)
	if err != nil {
		return nil, err
	}
	return pixels.Resize(px, side, side, c, d.h, d.w)
}

// readThreshold reads the run's calibration, if it has one.
func (d *Detector) readThreshold(run string) error {
	t, err := runfile.ReadThreshold(run)
	if errors.Is(err, runfile.ErrNoThreshold) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("detector: %w", err)
	}
	if t.Checkpoint != "" && t.Checkpoint != d.checkpoint {
		// Calibrated on another checkpoint's scores: not this model's.
		return nil
	}
	v := float64(t.LogLikelihood)
	if math.IsNaN(v) {
		return fmt.Errorf("detector: %s: the threshold is NaN", filepath.Join(run, ThresholdFile))
	}
	d.threshold, d.calibrated = v, true
	return nil
}
