package experiment

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// ScoreDocs describes every OOD score flowood eval computes (--score),
// each with the convention higher = more in-distribution.
var ScoreDocs = map[string]string{
	"loglik":     "log p(x), nats (the paper's score)",
	"ic":         "input complexity (Serra et al. 2020): log p(x) + L(x) ln 2, L the PNG size in bits (image/png, best compression)",
	"ic_lzma":    "input complexity with L(x) from LZMA over Paeth-predicted pixels (a stronger lossless coder than PNG's deflate)",
	"typicality": "typicality (Nalisnick et al. 2019), one input: -|log p(x) - mean log p(train)|; with --batch-test M also the batch test",
	"lr":         "likelihood ratio (Ren et al. 2019): log p(x) - log p_bg(x), p_bg the --background run (trained with --background-noise)",
	"waic":       "WAIC (Choi et al. 2018): mean - variance of log p over this run and the --ensemble runs",
	"general":    "general-domain ratio (Schirrmeister et al. 2020): log p(x) - log p_general(x), p_general the --general run",
	"dose":       "density of states (Morningstar et al. 2021): sum of log kernel densities, fitted on training inputs, of log p, the prior term, each layer's log-det and the latent norm",
}

// ScoreNames lists the scores of ScoreDocs in their column order.
var ScoreNames = []string{"loglik", "ic", "ic_lzma", "typicality", "lr", "waic", "general", "dose"}

// scorePlan is what an evaluation needs for its scores beyond the
// log-likelihood: the reference models, loaded once.
type scorePlan struct {
	names      []string // requested, in ScoreNames order, loglik first
	background model.Model
	general    model.Model
	ensemble   []model.Model
	// ensembleRuns are the run folders of ensemble, as given or as the
	// run's ensemble.json lists them.
	ensembleRuns []string
	// refs records the reference runs per score, for thresholds.json.
	refs      map[string][]runfile.Reference
	batchTest int
	// run is the evaluated run folder (references are recorded relative
	// to it); imageNoise says images are dequantised by pixels.ImageNoise.
	run        string
	imageNoise bool
	// dose is fitted on the training set's statistics (scoreSet with
	// train set), before any other set is scored.
	dose *ood.DoSE
}

// tracer is a model whose log-likelihood can be split into its layers'
// terms (flow.Flow.Trace, promoted to models that embed a flow.Flow).
type tracer interface {
	TraceChunks(ctx context.Context, parent *tensor.Pass, data []float32, shape []int, chunk int) (flow.Trace, error)
}

// planScores checks the requested scores and loads the reference runs
// they need, refusing a run whose data shape differs from rc's. The waic
// score takes its members from opt.Ensemble, else from the ensemble.json
// of run (trained with TrainEnsemble).
func planScores(opt EvalOptions, rc RunConfig, run string) (*scorePlan, error) {
	want := map[string]bool{"loglik": true}
	for _, s := range opt.Scores {
		if _, ok := ScoreDocs[s]; !ok {
			return nil, fmt.Errorf("unknown score %q (known: %s)", s, strings.Join(ScoreNames, ", "))
		}
		want[s] = true
	}
	p := &scorePlan{batchTest: opt.BatchTest, refs: map[string][]runfile.Reference{}, run: run}
	for _, s := range ScoreNames {
		if want[s] {
			p.names = append(p.names, s)
		}
	}
	if (want["ic"] || want["ic_lzma"]) && rc.Data.Shape.Kind != datakind.Image {
		return nil, fmt.Errorf("score ic: input complexity compresses images; the run models %s data", rc.Data.Shape.Kind)
	}
	if opt.BatchTest < 0 || (opt.BatchTest > 0 && !want["typicality"]) {
		return nil, fmt.Errorf("--batch-test %d: give a positive batch size, with --score typicality", opt.BatchTest)
	}
	need := func(score, flag, what string, runs ...string) error {
		if want[score] && (len(runs) == 0 || runs[0] == "") {
			return fmt.Errorf("score %s needs %s (%s)", score, flag, what)
		}
		if !want[score] && len(runs) > 0 && runs[0] != "" {
			return fmt.Errorf("%s is given but --score does not ask for %s", flag, score)
		}
		return nil
	}
	var err error
	if err = need("lr", "--background RUN", "a run of the same data trained with flowood train --background-noise MU", opt.Background); err != nil {
		return nil, err
	}
	if err = need("general", "--general RUN", "a run trained on a general-domain set such as tinyimagenet at this run's image size", opt.General); err != nil {
		return nil, err
	}
	ensembleFlag := "--ensemble"
	if want["waic"] && len(opt.Ensemble) == 0 && run != "" {
		e, err := ReadEnsemble(run)
		if err != nil {
			return nil, fmt.Errorf("score waic: %w", err)
		}
		if e != nil {
			opt.Ensemble = e.Runs(run)
			ensembleFlag = "ensemble member (" + filepath.Join(run, EnsembleFile) + ")"
		}
	}
	if err = need("waic", "--ensemble RUN,RUN,...", "other runs of the same model and data, trained with other seeds; "+
		"or a run trained with flowood train --ensemble K, whose members are found by themselves", opt.Ensemble...); err != nil {
		return nil, err
	}
	record := func(score, role, ref string) error {
		if p.run == "" {
			return nil
		}
		r, err := runfile.NewReference(p.run, ref, role, defaultCheckpoint(ref), checkpoint.ModelFile)
		if err != nil {
			return err
		}
		p.refs[score] = append(p.refs[score], r)
		return nil
	}
	if opt.Background != "" {
		if p.background, err = loadReference(opt.Background, rc, "--background"); err != nil {
			return nil, err
		}
		if err := record("lr", "background", opt.Background); err != nil {
			return nil, err
		}
	}
	if opt.General != "" {
		if p.general, err = loadReference(opt.General, rc, "--general"); err != nil {
			return nil, err
		}
		if err := record("general", "general", opt.General); err != nil {
			return nil, err
		}
	}
	for _, r := range opt.Ensemble {
		m, err := loadReference(r, rc, ensembleFlag)
		if err != nil && ensembleFlag != "--ensemble" {
			return nil, fmt.Errorf("%w (an unfinished ensemble: complete it with flowood train --out %s --resume)", err, run)
		}
		if err != nil {
			return nil, err
		}
		p.ensemble = append(p.ensemble, m)
		if err := record("waic", "ensemble", r); err != nil {
			return nil, err
		}
		p.ensembleRuns = append(p.ensembleRuns, r)
	}
	return p, nil
}

// defaultCheckpoint names the checkpoint of run that LoadModel and the
// detector load: best when there is one, latest otherwise.
func defaultCheckpoint(run string) string {
	if _, err := os.Stat(filepath.Join(run, "checkpoint", "best", checkpoint.ModelFile)); err == nil {
		return "best"
	}
	return "latest"
}

// loadReference loads the model of another run (its best checkpoint, or
// its latest) for data of rc's shape.
func loadReference(run string, rc RunConfig, flag string) (model.Model, error) {
	ref, err := ReadRunConfig(run)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, run, err)
	}
	if ref.Data.Shape != rc.Data.Shape {
		return nil, fmt.Errorf("%s %s models %v data; this run's are %v", flag, run, ref.Data.Shape, rc.Data.Shape)
	}
	m, err := LoadModel(ref, run, "")
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", flag, run, err)
	}
	return m, nil
}

// calibration returns the thresholds.json of an evaluation: per score,
// the threshold that accepts TPR of the in-distribution scores in, and
// what recomputing the score needs; base carries the fields shared with
// threshold.json.
func (p *scorePlan) calibration(base runfile.Threshold, modelSum string, in map[string][]float64, trainMean float64) (runfile.Calibration, error) {
	c := runfile.Calibration{Version: runfile.CalibrationVersion, TPR: base.TPR, Dataset: base.Dataset, Split: base.Split,
		N: base.N, Limit: base.Limit, SubsetSeed: base.SubsetSeed, Checkpoint: base.Checkpoint, ModelSHA256: modelSum,
		Rule: "per score: an input is OOD when its score is below threshold; threshold is the k-th largest of the n " +
			"in-distribution scores, k the smallest integer with k/n >= tpr (no interpolation; ood.AcceptThreshold)"}
	if p.imageNoise {
		c.Dequantization = Dequantization
	}
	for _, name := range p.names {
		thr, err := ood.AcceptThreshold(in[name], base.TPR)
		if err != nil {
			return c, fmt.Errorf("calibrating %s: %w", name, err)
		}
		sc := runfile.ScoreCalibration{Name: name, Threshold: JSONFloat(thr), Doc: ScoreDocs[name], References: p.refs[name]}
		switch name {
		case "ic":
			sc.Coder = "png"
		case "ic_lzma":
			sc.Coder = "lzma"
		case "typicality":
			m := JSONFloat(trainMean)
			sc.TrainMean = &m
		case "dose":
			sc.State = DoSEFile
		}
		c.Scores = append(c.Scores, sc)
	}
	return c, nil
}

// DoSEFile is where flowood eval writes the densities DoSE fitted on the
// training statistics (ood.DoSE as JSON), relative to the run folder.
const DoSEFile = "eval/dose.json"

// Dequantization is how flowood eval and the detector dequantise images.
const Dequantization = "u = (x + e)/256 per pixel, e ~ U[0,1) drawn from PCG seeded by the FNV-1a hash of the image's pixels " +
	"and their count (pixels.ImageNoise): an image's score is a function of the image alone"

// scoreSet computes the requested scores of one scored set: x its
// examples, ll their log-likelihoods under the run's model, trainMean
// the mean log-likelihood of the training examples scored. Reference
// models see the same dequantised inputs (scorer's seed and batch).
func (p *scorePlan) scoreSet(ctx context.Context, scorer *ood.LogLikelihood, x datakind.Examples, ll []float64, trainMean float64, isTrain bool) (map[string][]float64, error) {
	out := map[string][]float64{"loglik": ll}
	refLL := func(m model.Model) ([]float64, error) {
		s := *scorer
		s.Model, s.Progress = m, nil
		return s.Score(ctx, x, len(ll))
	}
	for _, name := range p.names {
		switch name {
		case "ic", "ic_lzma":
			coder := "png"
			if name == "ic_lzma" {
				coder = "lzma"
			}
			bits, err := compressedBits(x, len(ll), coder)
			if err != nil {
				return nil, err
			}
			out[name] = ood.InputComplexity(ll, bits)
		case "typicality":
			out[name] = ood.Typicality(ll, trainMean)
		case "lr", "general":
			m := p.background
			if name == "general" {
				m = p.general
			}
			ref, err := refLL(m)
			if err != nil {
				return nil, fmt.Errorf("score %s: %w", name, err)
			}
			out[name] = ood.Ratio(ll, ref)
		case "waic":
			lls := [][]float64{ll}
			for _, m := range p.ensemble {
				l, err := refLL(m)
				if err != nil {
					return nil, fmt.Errorf("score waic: %w", err)
				}
				lls = append(lls, l)
			}
			out[name] = ood.WAIC(lls)
		case "dose":
			names, _, stats, err := traceStats(ctx, scorer, x, len(ll))
			if err != nil {
				return nil, fmt.Errorf("score dose: %w", err)
			}
			if isTrain {
				if p.dose, err = ood.FitDoSE(names, stats, rand.New(rand.NewPCG(scorer.Seed, 0xd05e))); err != nil {
					return nil, fmt.Errorf("score dose: %w", err)
				}
			}
			if p.dose == nil {
				return nil, fmt.Errorf("score dose: the training set must be scored first")
			}
			out[name] = p.dose.Score(stats)
		}
	}
	return out, nil
}

// compressedBits returns the compressed length of the first n images of
// x: their pixels, read back exactly from the midpoint dequantisation
// u = (x + 1/2)/256 (exact in float32).
func compressedBits(x datakind.Examples, n int, coder string) ([]float64, error) {
	sh := x.Shape()
	h, w, c := sh[0], sh[1], sh[2]
	d := h * w * c
	u := make([]float32, d)
	px := make([]uint8, d)
	out := make([]float64, n)
	for i := range n {
		x.Read(u, []int{i}, nil)
		for j, v := range u {
			px[j] = uint8(math.Round(float64(v)*256 - 0.5))
		}
		b, err := ood.CompressedBits(px, h, w, c, coder)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// metricScores returns the names of the scores to report metrics for.
func (p *scorePlan) metricScores() []string { return slices.Clone(p.names) }

// traceStats returns DoSE's statistics of the first n examples of x
// (stats[s][i]: statistic s of example i): log p, the prior term, the
// latent norm and each layer's log-det, on the inputs scorer gives the
// model (its dequantisation and batches), each batch traced in chunks
// (flow.Flow.TraceChunks) so that an example's statistics do not depend
// on its batch. kinds[s] describes the layer of statistic s
// (flow.Describe), "" for the first three.
func traceStats(ctx context.Context, scorer *ood.LogLikelihood, x datakind.Examples, n int) (names, kinds []string, stats [][]float64, err error) {
	tm, ok := scorer.Model.(tracer)
	if !ok {
		return nil, nil, nil, fmt.Errorf("the model (%T) cannot split its log-likelihood into layers", scorer.Model)
	}
	batch := scorer.Batch
	if batch <= 0 {
		batch = 256
	}
	scorer.Model.SetTraining(false)
	read := scorer.Inputs(x)
	shape := x.Shape()
	d := 1
	for _, v := range shape {
		d *= v
	}
	pass := tensor.NewPass(tensor.PassOptions{CacheWeights: true})
	defer pass.Close()
	for lo := 0; lo < n; lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, nil, nil, err
		}
		hi := min(n, lo+batch)
		idx := make([]int, hi-lo)
		for i := range idx {
			idx[i] = lo + i
		}
		buf := make([]float32, len(idx)*d)
		read(buf, idx)
		tr, err := tm.TraceChunks(ctx, pass, buf, append([]int{len(idx)}, shape...), 0)
		if err != nil {
			return nil, nil, nil, err
		}
		if names == nil {
			names = []string{"log_p", "prior", "latent_norm"}
			kinds = []string{"", "", ""}
			for _, l := range tr.Layers {
				names = append(names, "logdet:"+l.Name)
				kinds = append(kinds, l.Kind)
			}
			stats = make([][]float64, len(names))
		}
		stats[0] = append(stats[0], tr.LogProb...)
		stats[1] = append(stats[1], tr.Prior...)
		stats[2] = append(stats[2], tr.LatentNorm...)
		for k, l := range tr.Layers {
			stats[3+k] = append(stats[3+k], l.LogDet...)
		}
	}
	return names, kinds, stats, nil
}
