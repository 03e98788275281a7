package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// ScoreNames lists the scores a Detector can compute, by the names
// flowood eval gives them (--score), in the order of scores.csv's
// columns. Every score is higher = more in-distribution:
//
//   - loglik: log p(x) in nats, the paper's score;
//   - ic, ic_lzma: input complexity (Serra et al. 2020), log p(x) + L(x)
//     ln 2 with L(x) the image's size in bits as a PNG at best compression
//     (ic) or as LZMA over Paeth-predicted pixels (ic_lzma);
//   - typicality: -|log p(x) - mean log p of training data| (Nalisnick et
//     al. 2019; the mean flowood eval recorded);
//   - lr: log p(x) - log p_bg(x), p_bg the background run flowood eval
//     used (Ren et al. 2019);
//   - waic: mean - variance of log p over this run and the ensemble runs
//     flowood eval used (Choi et al. 2018);
//   - general: log p(x) - log p_general(x), p_general the general-domain
//     run flowood eval used (Schirrmeister et al. 2020);
//   - dose: density of states over the flow's statistics (Morningstar et
//     al. 2021), with the densities flowood eval fitted on training data.
var ScoreNames = []string{"loglik", "ic", "ic_lzma", "typicality", "lr", "waic", "general", "dose"}

// ErrNotCalibrated is wrapped by the error LoadWith returns when a score
// asked for needs what only flowood eval records (a reference run, a
// fitted state, the primary score's threshold) and the run's evaluation
// did not record it for the loaded weights.
var ErrNotCalibrated = errors.New("not calibrated by flowood eval")

// refModel is a reference run's model with the pass that keeps its
// weight transforms.
type refModel struct {
	dir     string
	model   model.Model
	weights *tensor.Pass
}

// tracer is a model whose log-likelihood splits into its layers' terms
// (flow.Flow.TraceChunks, promoted to the models that embed a flow).
type tracer interface {
	TraceChunks(ctx context.Context, parent *tensor.Pass, data []float32, shape []int, chunk int) (flow.Trace, error)
}

// setupScores reads the run's calibration and prepares the scores opt
// asks for: their thresholds, reference models and states.
func (d *Detector) setupScores(run string, opt Options) error {
	d.thresholds = map[string]float64{}
	cal, err := runfile.ReadCalibration(run)
	calibrated := err == nil
	switch {
	case errors.Is(err, runfile.ErrNoCalibration):
	case err != nil:
		return fmt.Errorf("detector: %w", err)
	}
	stale := ""
	if calibrated {
		sum, err := runfile.FileSHA256(filepath.Join(run, "checkpoint", d.checkpoint, checkpoint.ModelFile))
		if err != nil {
			return fmt.Errorf("detector: %w", err)
		}
		switch {
		case cal.Checkpoint != "" && cal.Checkpoint != d.checkpoint:
			stale = fmt.Sprintf("%s calibrates checkpoint %s, the detector loads %s", runfile.CalibrationFile, cal.Checkpoint, d.checkpoint)
		case cal.ModelSHA256 != "" && cal.ModelSHA256 != sum:
			stale = fmt.Sprintf("checkpoint/%s changed since flowood eval wrote %s (its weights' SHA-256 differs)", d.checkpoint, runfile.CalibrationFile)
		}
	}
	if stale != "" {
		// Another model's thresholds: none apply, the log-likelihood's
		// (threshold.json, of the same evaluation) included.
		calibrated, d.threshold, d.calibrated, d.trainMean = false, d.uniformThreshold(), false, math.NaN()
	}
	if calibrated {
		for _, s := range cal.Scores {
			d.thresholds[s.Name] = float64(s.Threshold)
		}
		if v, ok := d.thresholds["loglik"]; ok {
			d.threshold, d.calibrated = v, true
		}
	} else if d.calibrated {
		d.thresholds["loglik"] = d.threshold // threshold.json of an older flowood
	}

	// The scores to compute.
	names := opt.Scores
	if names == nil {
		names = []string{"loglik"}
		if calibrated {
			names = cal.Names()
		} else if !math.IsNaN(d.trainMean) {
			names = append(names, "typicality")
		}
	}
	if opt.Complexity {
		names = append(names, "ic")
	}
	want := map[string]bool{"loglik": true}
	for _, n := range names {
		if !slices.Contains(ScoreNames, n) {
			return fmt.Errorf("detector: unknown score %q (known: %s)", n, strings.Join(ScoreNames, ", "))
		}
		want[n] = true
	}
	for _, n := range ScoreNames {
		if want[n] {
			d.scores = append(d.scores, n)
		}
	}
	d.primary = opt.Primary
	if d.primary == "" {
		d.primary = "loglik"
	}
	if !want[d.primary] {
		return fmt.Errorf("detector: primary score %q is not among the scores computed (%s)", d.primary, strings.Join(d.scores, ", "))
	}
	if _, ok := d.thresholds[d.primary]; d.primary != "loglik" && !ok {
		return fmt.Errorf("detector: primary score %s has no calibrated threshold in %s: %w", d.primary,
			filepath.Join(run, runfile.CalibrationFile), notCalibrated(stale))
	}

	// What each score needs beyond the log-likelihood.
	d.refs = map[string][]*refModel{}
	for _, name := range d.scores {
		sc, ok := cal.Score(name)
		needs := name == "lr" || name == "waic" || name == "general" || name == "dose" || (name == "typicality" && math.IsNaN(d.trainMean))
		if needs && (!calibrated || !ok) {
			return fmt.Errorf("detector: score %s needs what flowood eval --score %s records in %s: %w", name, name,
				filepath.Join(run, runfile.CalibrationFile), notCalibrated(stale))
		}
		switch name {
		case "typicality":
			if ok && sc.TrainMean != nil {
				d.trainMean = float64(*sc.TrainMean)
			}
		case "lr", "waic", "general":
			if len(sc.References) == 0 {
				return fmt.Errorf("detector: score %s: %s records no reference run", name, filepath.Join(run, runfile.CalibrationFile))
			}
			for _, r := range sc.References {
				m, err := d.loadReference(run, name, r)
				if err != nil {
					return err
				}
				d.refs[name] = append(d.refs[name], m)
			}
		case "dose":
			if err := d.loadDoSE(run, sc.State); err != nil {
				return err
			}
		}
	}
	return nil
}

// notCalibrated explains why a score lacks its calibration.
func notCalibrated(stale string) error {
	if stale != "" {
		return fmt.Errorf("%w (%s; rerun flowood eval)", ErrNotCalibrated, stale)
	}
	return ErrNotCalibrated
}

// uniformThreshold is the log-likelihood of the uniform density on
// [0, 1)^D: 0 nats, 8 bits/dim.
func (d *Detector) uniformThreshold() float64 {
	dim := float64(d.h * d.w * d.c)
	return dim*math.Log(256) - dim*8*math.Ln2
}

// loadReference loads the reference run r of score, checking that it
// models images of this run's shape and still has the weights flowood
// eval scored.
func (d *Detector) loadReference(run, score string, r runfile.Reference) (*refModel, error) {
	dir, err := r.Locate(run)
	if err != nil {
		return nil, fmt.Errorf("detector: score %s: %w", score, err)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("detector: score %s: the %s run %s: %s", score, r.Role, dir, fmt.Sprintf(format, args...))
	}
	spec, _, err := runfile.Read(dir)
	if err != nil {
		return nil, fail("%v", err)
	}
	sh := spec.Data.Shape
	if sh.Height != d.h || sh.Width != d.w || sh.Channels != d.c {
		return nil, fail("models %dx%dx%d images, this run %dx%dx%d", sh.Height, sh.Width, sh.Channels, d.h, d.w, d.c)
	}
	ck := filepath.Join(dir, "checkpoint", r.Checkpoint)
	sum, err := runfile.FileSHA256(filepath.Join(ck, checkpoint.ModelFile))
	if err != nil {
		return nil, fail("%v", err)
	}
	if r.ModelSHA256 != "" && sum != r.ModelSHA256 {
		return nil, fail("checkpoint/%s has other weights than when flowood eval calibrated %s (SHA-256 differs); rerun flowood eval", r.Checkpoint, score)
	}
	m, err := spec.NewModel(0)
	if err != nil {
		return nil, fail("%v", err)
	}
	if err := checkpoint.LoadWeights(ck, m); err != nil {
		return nil, fail("%v", err)
	}
	m.SetTraining(false)
	return &refModel{dir: dir, model: m, weights: tensor.NewPass(tensor.PassOptions{CacheWeights: true})}, nil
}

// loadDoSE reads the densities flowood eval fitted (state, relative to
// the run folder) and checks that the model gives the statistics they
// take.
func (d *Detector) loadDoSE(run, state string) error {
	if state == "" {
		return fmt.Errorf("detector: score dose: %s records no state file", filepath.Join(run, runfile.CalibrationFile))
	}
	path := filepath.Join(run, filepath.FromSlash(state))
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("detector: score dose: %w", err)
	}
	var dose ood.DoSE
	if err := json.Unmarshal(b, &dose); err != nil {
		return fmt.Errorf("detector: score dose: reading %s: %w", path, err)
	}
	if _, ok := d.model.(tracer); !ok {
		return fmt.Errorf("detector: score dose: the model (%T) cannot split its log-likelihood into layers", d.model)
	}
	d.dose = &dose
	return nil
}

// computeScores returns, per score computed beyond loglik, the scores of
// the n images u (dequantised) with log-likelihoods ll and pixels px.
func (d *Detector) computeScores(ctx context.Context, u []float32, n int, px [][]uint8, ll []float64) (map[string][]float64, error) {
	out := map[string][]float64{"loglik": ll}
	refLL := func(r *refModel) ([]float64, error) {
		lp, err := flow.LogProbChunks(ctx, r.weights, r.model.LogProb, u, []int{n, d.h, d.w, d.c}, 0)
		if err != nil {
			return nil, err
		}
		v := make([]float64, n)
		for i, x := range lp {
			if math.IsNaN(float64(x)) {
				return nil, fmt.Errorf("detector: image %d has a NaN log-likelihood under the reference run %s", i, r.dir)
			}
			v[i] = float64(x)
		}
		return v, nil
	}
	for _, name := range d.scores {
		switch name {
		case "ic", "ic_lzma":
			coder := "png"
			if name == "ic_lzma" {
				coder = "lzma"
			}
			bits := make([]float64, n)
			for i := range bits {
				b, err := ood.CompressedBits(px[i], d.h, d.w, d.c, coder)
				if err != nil {
					return nil, &InputError{Index: i, Err: err}
				}
				bits[i] = b
			}
			out[name] = ood.InputComplexity(ll, bits)
		case "typicality":
			out[name] = ood.Typicality(ll, d.trainMean)
		case "lr", "general":
			ref, err := refLL(d.refs[name][0])
			if err != nil {
				return nil, err
			}
			out[name] = ood.Ratio(ll, ref)
		case "waic":
			lls := [][]float64{ll}
			for _, r := range d.refs[name] {
				l, err := refLL(r)
				if err != nil {
					return nil, err
				}
				lls = append(lls, l)
			}
			out[name] = ood.WAIC(lls)
		case "dose":
			tr, err := d.model.(tracer).TraceChunks(ctx, d.weights, u, []int{n, d.h, d.w, d.c}, 0)
			if err != nil {
				return nil, err
			}
			stats := [][]float64{tr.LogProb, tr.Prior, tr.LatentNorm}
			names := []string{"log_p", "prior", "latent_norm"}
			for _, l := range tr.Layers {
				stats = append(stats, l.LogDet)
				names = append(names, "logdet:"+l.Name)
			}
			if want := d.dose.Statistics(); !slices.Equal(names, want) {
				return nil, fmt.Errorf("detector: score dose: the model gives the statistics %v, the fitted densities take %v", names, want)
			}
			out[name] = d.dose.Score(stats)
		}
	}
	return out, nil
}

// Scores returns the names of the scores Score computes, in ScoreNames
// order (loglik first).
func (d *Detector) Scores() []string { return slices.Clone(d.scores) }

// Thresholds returns the threshold of each score computed that has one:
// flowood eval's, at 95% TPR on held-out in-distribution data, and for
// loglik always Threshold() (calibrated or not; see Calibrated). An
// input is OOD by a score when the score is below its threshold. Scores
// computed without a calibration (ic on a run evaluated without it, say)
// have none.
func (d *Detector) Thresholds() map[string]float64 {
	out := map[string]float64{"loglik": d.threshold}
	for _, s := range d.scores {
		if v, ok := d.thresholds[s]; ok {
			out[s] = v
		}
	}
	return out
}

// Primary returns the score whose decision is Result.OOD: loglik unless
// Options.Primary chose another.
func (d *Detector) Primary() string { return d.primary }
