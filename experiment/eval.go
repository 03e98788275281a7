package experiment

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/flowood/flowood/internal/jsonfloat"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/train/checkpoint"
	"github.com/flowood/flowood/viz"
)

// EvalOptions configures Evaluate.
type EvalOptions struct {
	// OOD lists the out-of-distribution datasets (their test splits).
	OOD []string
	// Limit caps the examples scored per set (0: all): a random subset of
	// Limit examples drawn with Seed (data.SampleIndices), the same for
	// every set of the same size. scores.csv gives each example's index
	// in its split, and metrics.json the limit and seed.
	Limit int
	// Seed seeds the subsets of Limit.
	Seed uint64
	// Checkpoint is "latest" or "best"; empty means best when the run has
	// one and latest otherwise (the checkpoint package detector loads, so
	// that the threshold calibrated here is the one it applies).
	Checkpoint string
	// Batch is the evaluation batch size (0: 256).
	Batch int
	// Progress receives progress lines; nil discards.
	Progress io.Writer

	// Scores lists the OOD scores to compute besides loglik (ScoreNames;
	// see ScoreDocs). Background, General and Ensemble name the run
	// folders the lr, general and waic scores need; BatchTest, when
	// positive, adds the typicality batch test on batches of that size.
	Scores     []string
	Background string
	General    string
	Ensemble   []string
	BatchTest  int
	// Bootstrap is the number of bootstrap replicates of each metric's
	// 95% interval (0: 200; negative: no intervals).
	Bootstrap int
	// MatchCompression, when the in-distribution images went through
	// lossy compression (data.Images.Lossy: the mirror's JPEG CIFAR-10),
	// also scores each OOD set after the same round trip at the model's
	// resolution, as the set NAME@jpegQ: a flow trained on JPEG images
	// learns JPEG's local statistics, and only OOD data compressed alike
	// compare with them.
	MatchCompression bool
	// ResizeVariants lists resize methods (ResizeMethods: area, bilinear,
	// nearest) by which each OOD set that flowood resized to the model's
	// size (data.Resampling) is also prepared and scored, as the set
	// NAME@METHOD (and NAME@METHOD@jpegQ with MatchCompression): how much
	// of the result is the resizing's. The set's own method is its plain
	// row.
	ResizeVariants []string
}

// TPR is the fraction of in-distribution data the calibrated OOD
// threshold accepts (RUN/eval/threshold.json).
const TPR = 0.95

// SetSummary describes the scores of one set.
type SetSummary struct {
	Dataset    string    `json:"dataset"`
	Split      string    `json:"split"`
	N          int       `json:"n"`
	MeanLogLik JSONFloat `json:"mean_log_likelihood"`
	// MeanBPD is the mean loss per dimension, in Metrics.Unit: bits/dim
	// for images, under the key mean_bits_per_dim; nats/dim for tables,
	// under the key mean_nats_per_dim (see MarshalJSON).
	MeanBPD JSONFloat `json:"mean_bits_per_dim"`
	// Resampling is the images' size provenance (as published, and any
	// crop and resize flowood applied); nil for tables.
	Resampling *data.Resampling `json:"resampling,omitempty"`

	unit string // Metrics.Unit
}

// MarshalJSON encodes s, naming the per-dimension mean by its unit:
// mean_nats_per_dim for tables, where no quantisation applies and the
// loss is -log p(x)/D in nats, mean_bits_per_dim otherwise.
func (s SetSummary) MarshalJSON() ([]byte, error) {
	type plain SetSummary // without this method
	if s.unit != "nats/dim" {
		return json.Marshal(plain(s))
	}
	return json.Marshal(struct {
		Dataset    string    `json:"dataset"`
		Split      string    `json:"split"`
		N          int       `json:"n"`
		MeanLogLik JSONFloat `json:"mean_log_likelihood"`
		MeanNPD    JSONFloat `json:"mean_nats_per_dim"`
	}{s.Dataset, s.Split, s.N, s.MeanLogLik, s.MeanBPD})
}

// JSONFloat is a float64 that encodes NaN and ±Inf (a diverged model, an
// input whose latent overflows) as strings, which JSON numbers cannot hold.
type JSONFloat = jsonfloat.Float

// Metrics is RUN/eval/metrics.json.
type Metrics struct {
	Model      string      `json:"model"`
	Checkpoint string      `json:"checkpoint"`
	In         SetSummary  `json:"in"`
	Train      *SetSummary `json:"train,omitempty"`
	// OOD holds, per OOD set, the metrics of every score computed
	// (ood.<set>.<score>), each with its bootstrap interval.
	OOD map[string]map[string]ood.Report `json:"ood"`
	// Scores lists the scores computed, in scores.csv's column order.
	Scores []string `json:"scores"`
	// Lossy says how the in-distribution images were compressed, when
	// they were (OOD sets NAME@jpegQ then got the same round trip).
	Lossy *data.Lossy `json:"in_lossy,omitempty"`
	// Ensemble lists the run folders that formed, with the run, the
	// ensemble of the waic score (given, or the run's ensemble.json).
	Ensemble []string `json:"ensemble,omitempty"`
	// ResizeNotes says, for each OOD set resized differently from the
	// in-distribution set (data.SameResampling), how each was resized
	// (each set's summary also carries its data.Resampling).
	ResizeNotes []string `json:"resize_notes,omitempty"`
	// TypicalityBatch is the batch size of the typicality batch test
	// (the score typicality_batch: one value per batch), 0 if not run.
	TypicalityBatch int                   `json:"typicality_batch,omitempty"`
	OODSets         map[string]SetSummary `json:"ood_sets"`
	Convention      string                `json:"convention"`
	// Unit is the unit of the per-dimension means: "bits/dim" for
	// images, "nats/dim" for tables.
	Unit string `json:"unit"`
	// Limit and SubsetSeed give the random subsets scored (Limit 0: whole
	// splits; the training set is always a subset of the examples the run
	// trained on, as many as the in-distribution test set).
	Limit      int    `json:"limit"`
	SubsetSeed uint64 `json:"subset_seed"`
	// Threshold is the calibrated OOD threshold (also threshold.json).
	Threshold runfile.Threshold `json:"threshold"`
	// Thresholds holds every score's threshold, calibrated the same way
	// (also thresholds.json, with what recomputing each score needs).
	Thresholds map[string]JSONFloat `json:"thresholds"`
}

// Convention states the sign and class conventions of Metrics.
const Convention = "score = log-likelihood (higher = more in-distribution); in-distribution is the positive class " +
	"(sklearn roc_auc_score(y_in, loglik), as in the paper); fpr_at_95_tpr = fraction of OOD accepted at the " +
	"threshold keeping 95% of in-distribution; OpenOOD uses the opposite convention for FPR@95"

// Evaluate scores the run's in-distribution test set, a slice of its
// training set and each OOD set with the run's model; calibrates the OOD
// threshold that accepts TPR of the in-distribution test set
// (ood.AcceptThreshold); and writes RUN/eval/{threshold.json, scores.csv,
// metrics.json, loglik-hist.png}, each atomically. It checks ctx between
// batches: when ctx is done it returns ctx's error (wrapped) before
// writing anything, so the files of an earlier evaluation stay as they
// were.
func Evaluate(ctx context.Context, run string, opt EvalOptions) (*Metrics, error) {
	rc, err := ReadRunConfig(run)
	if err != nil {
		return nil, err
	}
	if opt.Checkpoint == "" {
		opt.Checkpoint = "latest"
		if _, err := os.Stat(filepath.Join(run, "checkpoint", "best", checkpoint.ModelFile)); err == nil {
			opt.Checkpoint = "best"
		}
	}
	if opt.Checkpoint != "latest" && opt.Checkpoint != "best" {
		return nil, fmt.Errorf("checkpoint %q: want latest or best", opt.Checkpoint)
	}
	for _, name := range opt.OOD {
		if _, err := splitsOf(name); err != nil {
			return nil, err
		}
	}
	if err := checkResizeVariants(opt.ResizeVariants); err != nil {
		return nil, err
	}
	plan, err := planScores(opt, rc, run)
	if err != nil {
		return nil, err
	}
	m, err := rc.BuildModel()
	if err != nil {
		return nil, err
	}
	ck := filepath.Join(run, "checkpoint", opt.Checkpoint)
	if _, err := checkpoint.Load(ck, m); err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	shape := rc.Data.Shape
	// Images are dequantised as the detector does (pixels.ImageNoise),
	// so that scores.csv and the thresholds are the detector's.
	scorer := &ood.LogLikelihood{Model: m, Batch: opt.Batch, Seed: rc.Train.Seed + 1, Progress: opt.Progress,
		ImageNoise: shape.Kind == datakind.Image}
	plan.imageNoise = scorer.ImageNoise
	modelSum, err := runfile.FileSHA256(filepath.Join(ck, checkpoint.ModelFile))
	if err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}

	type set struct {
		name, split string
		idx         []int // indices in the split
		ll          []float64
		x           datakind.Examples
		scores      map[string][]float64
	}
	score := func(name, split string, x datakind.Examples, idx []int) (set, error) {
		ll, err := scorer.Score(ctx, x, 0)
		return set{name: name, split: split, idx: idx, ll: ll, x: x}, err
	}
	load := func(name, split string) (datakind.Examples, error) {
		x, err := LoadExamples(rc.Data, name, split)
		if err != nil {
			return nil, fmt.Errorf("loading %s %s: %w", name, split, err)
		}
		return x, nil
	}
	heldOut, err := heldOutSplit(rc.Data.Name)
	if err != nil {
		return nil, err
	}
	if note := rc.TrainSplitNote(); note != "" && opt.Progress != nil {
		fmt.Fprintln(opt.Progress, note)
	}
	x, err := load(rc.Data.Name, heldOut)
	if err != nil {
		return nil, err
	}
	var lossy *data.Lossy
	inImages, _ := x.(*data.Images)
	if inImages != nil {
		lossy = inImages.Lossy
	}
	x, idx := limitExamples(x, opt.Limit, false, opt.Seed)
	in, err := score(rc.Data.Name, heldOut, x, idx)
	if err != nil {
		return nil, err
	}
	// the training set: the examples the run trained on, as many as the
	// test set scored
	x, err = load(rc.Data.Name, rc.Data.Train())
	if err != nil {
		return nil, err
	}
	x, trained := limitExamples(x, rc.Data.TrainLimit, rc.Data.Subset == runfile.SubsetFirst, rc.Data.SubsetSeed)
	x, idx = limitExamples(x, len(in.ll), false, opt.Seed)
	for i, j := range idx {
		idx[i] = trained[j]
	}
	tr, err := score(rc.Data.Name, rc.Data.Train(), x, idx)
	if err != nil {
		return nil, err
	}
	sets := []set{tr, in}
	thr, err := ood.AcceptThreshold(in.ll, TPR)
	if err != nil {
		return nil, err
	}
	met := &Metrics{Model: rc.Model, Checkpoint: opt.Checkpoint, In: summarize(in.name, in.split, in.ll, shape),
		OOD: map[string]map[string]ood.Report{}, Scores: plan.metricScores(), Ensemble: plan.ensembleRuns, TypicalityBatch: opt.BatchTest, OODSets: map[string]SetSummary{}, Convention: Convention, Unit: shape.Unit(),
		Limit: opt.Limit, SubsetSeed: opt.Seed,
		Threshold: runfile.Threshold{LogLikelihood: JSONFloat(thr), PerDim: JSONFloat(shape.PerDim(thr)), Unit: shape.Unit(),
			TPR: TPR, Dataset: in.name, Split: in.split, N: len(in.ll), Limit: opt.Limit, SubsetSeed: opt.Seed,
			Checkpoint: opt.Checkpoint, Rule: runfile.ThresholdRule}}
	ts := summarize(tr.name, tr.split, tr.ll, shape)
	met.Train = &ts
	trainMean := float64(ts.MeanLogLik)
	withScores := func(s *set) error {
		var err error
		s.scores, err = plan.scoreSet(ctx, scorer, s.x, s.ll, trainMean, s == &tr)
		if err != nil {
			return fmt.Errorf("scoring %s %s: %w", s.name, s.split, err)
		}
		return nil
	}
	for _, s := range []*set{&tr, &in} {
		if err := withScores(s); err != nil {
			return nil, err
		}
	}
	sets = []set{tr, in}
	cal, err := plan.calibration(met.Threshold, modelSum, in.scores, trainMean)
	if err != nil {
		return nil, err
	}
	met.Thresholds = map[string]JSONFloat{}
	for _, sc := range cal.Scores {
		met.Thresholds[sc.Name] = sc.Threshold
	}
	replicates := opt.Bootstrap
	if replicates == 0 {
		replicates = 200
	}
	brng := rand.New(rand.NewPCG(opt.Seed, 0xb007))
	type oodSet struct {
		label, split string
		x            datakind.Examples
	}
	var oodSets []oodSet
	// withMatched adds the OOD set x as label, and, with
	// MatchCompression, after the in-distribution set's round trip
	withMatched := func(label, split string, x datakind.Examples) error {
		oodSets = append(oodSets, oodSet{label, split, x})
		if im, ok := x.(*data.Images); ok && opt.MatchCompression && lossy != nil && lossy.Format == "jpeg" && im.Lossy == nil {
			rt, err := data.JPEGRoundTrip(im, lossy.Quality)
			if err != nil {
				return err
			}
			oodSets = append(oodSets, oodSet{fmt.Sprintf("%s@jpeg%d", label, lossy.Quality), split, rt})
		}
		return nil
	}
	for _, name := range opt.OOD {
		split := oodSplit(name, rc.Data.Embedded)
		x, err := load(name, split)
		if err != nil {
			return nil, err
		}
		if err := withMatched(name, split, x); err != nil {
			return nil, err
		}
		im, ok := x.(*data.Images)
		if !ok || inImages == nil {
			continue
		}
		if note := resizeNote(inImages, im); note != "" {
			met.ResizeNotes = append(met.ResizeNotes, note)
		}
		variants, err := resizeVariants(rc.Data, name, split, im, opt.ResizeVariants)
		if err != nil {
			return nil, err
		}
		for _, v := range variants {
			if err := withMatched(v.label, split, v.im); err != nil {
				return nil, err
			}
		}
	}
	met.Lossy = lossy
	if inImages != nil {
		met.In.Resampling = &inImages.Resampling
	}
	for _, ds := range oodSets {
		name := ds.label
		x, idx := limitExamples(ds.x, opt.Limit, false, opt.Seed)
		o, err := score(name, ds.split, x, idx)
		if err != nil {
			return nil, err
		}
		if err := withScores(&o); err != nil {
			return nil, err
		}
		reps := map[string]ood.Report{}
		report := func(score string, a, b []float64) error {
			var r ood.Report
			var err error
			if replicates > 0 {
				r, err = ood.EvaluateCI(a, b, replicates, brng)
			} else {
				r, err = ood.Evaluate(a, b)
			}
			if err != nil {
				return fmt.Errorf("metrics of %s for %s: %w", score, name, err)
			}
			reps[score] = r
			return nil
		}
		for _, sc := range plan.names {
			if err := report(sc, in.scores[sc], o.scores[sc]); err != nil {
				return nil, err
			}
		}
		if opt.BatchTest > 0 {
			a := ood.TypicalityBatch(in.ll, trainMean, opt.BatchTest, brng)
			b := ood.TypicalityBatch(o.ll, trainMean, opt.BatchTest, brng)
			if len(a) == 0 || len(b) == 0 {
				return nil, fmt.Errorf("--batch-test %d: %s has %d and %s %d examples, fewer than one batch", opt.BatchTest, in.name, len(in.ll), name, len(o.ll))
			}
			if err := report("typicality_batch", a, b); err != nil {
				return nil, err
			}
		}
		met.OOD[name] = reps
		sum := summarize(o.name, o.split, o.ll, shape)
		if im, ok := ds.x.(*data.Images); ok {
			sum.Resampling = &im.Resampling
		}
		met.OODSets[name] = sum
		sets = append(sets, o)
	}

	dir := filepath.Join(run, "eval")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	if err := runfile.WriteThreshold(run, met.Threshold); err != nil {
		return nil, err
	}
	if err := writeDoSE(run, plan.dose); err != nil {
		return nil, err
	}
	if err := runfile.WriteCalibration(run, cal); err != nil {
		return nil, err
	}
	// scores.csv
	var buf csvBuffer
	w := csv.NewWriter(&buf)
	head := []string{"dataset", "split", "index", "log_likelihood", strings.ReplaceAll(shape.Unit(), "/dim", "_per_dim")}
	extra := plan.names[1:] // after loglik, which is log_likelihood
	w.Write(append(head, extra...))
	for _, s := range sets {
		for i, v := range s.ll {
			row := []string{s.name, s.split, strconv.Itoa(s.idx[i]), strconv.FormatFloat(v, 'g', -1, 64),
				strconv.FormatFloat(shape.PerDim(v), 'g', 8, 64)}
			for _, sc := range extra {
				row = append(row, strconv.FormatFloat(s.scores[sc][i], 'g', -1, 64))
			}
			w.Write(row)
		}
	}
	w.Flush()
	if err := writeFileAtomic(filepath.Join(dir, "scores.csv"), buf.b); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(met, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", filepath.Join(dir, "metrics.json"), err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "metrics.json"), append(b, '\n')); err != nil {
		return nil, err
	}
	var series []viz.Series
	for _, s := range sets {
		label := s.name + " " + s.split
		series = append(series, viz.Series{Name: label, Values: s.ll})
	}
	title := fmt.Sprintf("%s trained on %s: log-likelihood (nats)", rc.Model, rc.Data.Name)
	xlabel := "log-likelihood (nats, density on [0,1)^D)"
	if shape.Kind == datakind.Tabular {
		xlabel = "log-likelihood (nats)"
	}
	if err := viz.Histogram(filepath.Join(dir, "loglik-hist.png"), title, xlabel, series, 60); err != nil {
		return nil, err
	}
	return met, nil
}

// writeDoSE writes the fitted DoSE to RUN/eval/dose.json, or removes an
// earlier evaluation's when d is nil.
func writeDoSE(run string, d *ood.DoSE) error {
	path := filepath.Join(run, DoSEFile)
	if d == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", path, err)
		}
		return nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return writeFileAtomic(path, append(b, '\n'))
}

type csvBuffer struct{ b []byte }

func (c *csvBuffer) Write(p []byte) (int, error) { c.b = append(c.b, p...); return len(p), nil }

func summarize(name, split string, ll []float64, shape datakind.Shape) SetSummary {
	var s, sb float64
	for _, v := range ll {
		s += v
		sb += shape.PerDim(v)
	}
	n := float64(len(ll))
	return SetSummary{Dataset: name, Split: split, N: len(ll), MeanLogLik: JSONFloat(s / n), MeanBPD: JSONFloat(sb / n), unit: shape.Unit()}
}

// PrintTable writes the metrics as an aligned table with the paper's
// AUROC beside each OOD set.
func (m *Metrics) PrintTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	unit := m.Unit
	if unit == "" {
		unit = "bits/dim"
	}
	fmt.Fprintf(tw, "set\tn\tmean %s\tAUROC\tAUPR-in\tAUPR-out\tFPR@95TPR\tpaper AUROC\t\n", unit)
	row := func(s SetSummary) {
		fmt.Fprintf(tw, "%s %s\t%d\t%.3f\t\t\t\t\t\t\n", s.Dataset, s.Split, s.N, s.MeanBPD)
	}
	if m.Train != nil {
		row(*m.Train)
	}
	row(m.In)
	names := make([]string, 0, len(m.OOD))
	for n := range m.OOD {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r, s := m.OOD[n]["loglik"], m.OODSets[n]
		paper := "-"
		if v, ok := PaperAUROC[m.Model][m.In.Dataset][n]; ok {
			paper = fmt.Sprintf("%.3f", v/100)
		}
		fmt.Fprintf(tw, "%s %s (OOD)\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t\n", s.Dataset, s.Split, s.N, s.MeanBPD,
			r.AUROC, r.AUPRIn, r.AUPROut, r.FPRAt95TPR, paper)
	}
	tw.Flush()
	fmt.Fprintln(w, "AUROC: in-distribution positive, score = log-likelihood (paper's convention); < 0.5 means OOD data gets HIGHER likelihood.")
	for _, n := range m.ResizeNotes {
		fmt.Fprintf(w, "Note: %s.\n", n)
	}
	scores := slices.Clone(m.Scores)
	if m.TypicalityBatch > 0 {
		scores = append(scores, "typicality_batch")
	}
	if len(scores) < 2 {
		return
	}
	fmt.Fprintln(w, "\nAUROC of each score [95% bootstrap interval] (higher score = more in-distribution):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "OOD set\t")
	for _, sc := range scores {
		fmt.Fprintf(tw, "%s\t", sc)
	}
	fmt.Fprintln(tw)
	for _, n := range names {
		fmt.Fprintf(tw, "%s\t", n)
		for _, sc := range scores {
			r, ok := m.OOD[n][sc]
			switch {
			case !ok:
				fmt.Fprintf(tw, "-\t")
			case r.AUROCCI != nil:
				fmt.Fprintf(tw, "%.3f [%.3f, %.3f]\t", r.AUROC, r.AUROCCI[0], r.AUROCCI[1])
			default:
				fmt.Fprintf(tw, "%.3f\t", r.AUROC)
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if m.TypicalityBatch > 0 {
		fmt.Fprintf(w, "typicality_batch: one score per batch of %d inputs (Nalisnick et al.'s batch test).\n", m.TypicalityBatch)
	}
}
