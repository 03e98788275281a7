package experiment

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"text/tabwriter"

	"github.com/flowood/flowood/internal/jsonfloat"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/train/checkpoint"
	"github.com/flowood/flowood/viz"
)

// EvalOptions configures Evaluate.
type EvalOptions struct {
	// OOD lists the out-of-distribution datasets (their test splits).
	OOD []string
	// Limit caps the images scored per set (0: all).
	Limit int
	// Checkpoint is "latest" (default) or "best".
	Checkpoint string
	// Batch is the evaluation batch size (0: 256).
	Batch int
	// Progress receives progress lines; nil discards.
	Progress io.Writer
}

// SetSummary describes the scores of one set.
type SetSummary struct {
	Dataset    string    `json:"dataset"`
	Split      string    `json:"split"`
	N          int       `json:"n"`
	MeanLogLik JSONFloat `json:"mean_log_likelihood"`
	MeanBPD    JSONFloat `json:"mean_bits_per_dim"`
}

// JSONFloat is a float64 that encodes NaN and ±Inf (a diverged model, an
// input whose latent overflows) as strings, which JSON numbers cannot hold.
type JSONFloat = jsonfloat.Float

// Metrics is RUN/eval/metrics.json.
type Metrics struct {
	Model      string                `json:"model"`
	In         SetSummary            `json:"in"`
	Train      *SetSummary           `json:"train,omitempty"`
	OOD        map[string]ood.Report `json:"ood"`
	OODSets    map[string]SetSummary `json:"ood_sets"`
	Convention string                `json:"convention"`
}

// Convention states the sign and class conventions of Metrics.
const Convention = "score = log-likelihood (higher = more in-distribution); in-distribution is the positive class " +
	"(sklearn roc_auc_score(y_in, loglik), as in the paper); fpr_at_95_tpr = fraction of OOD accepted at the " +
	"threshold keeping 95% of in-distribution; OpenOOD uses the opposite convention for FPR@95"

// Evaluate scores the run's in-distribution test set, a slice of its
// training set and each OOD set with the run's model, and writes
// RUN/eval/{scores.csv, metrics.json, loglik-hist.png}.
func Evaluate(run string, opt EvalOptions) (*Metrics, error) {
	rc, err := ReadRunConfig(run)
	if err != nil {
		return nil, err
	}
	if opt.Checkpoint == "" {
		opt.Checkpoint = "latest"
	}
	if opt.Checkpoint != "latest" && opt.Checkpoint != "best" {
		return nil, fmt.Errorf("checkpoint %q: want latest or best", opt.Checkpoint)
	}
	for _, name := range opt.OOD {
		if _, err := data.Splits(name); err != nil {
			return nil, err
		}
	}
	m := rc.BuildModel()
	ck := filepath.Join(run, "checkpoint", opt.Checkpoint)
	if _, err := checkpoint.Load(ck, m); err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	d := rc.RealNVP.Height * rc.RealNVP.Width * rc.RealNVP.Channels
	scorer := &ood.LogLikelihood{Model: m, Batch: opt.Batch, Seed: rc.Train.Seed + 1, Progress: opt.Progress}

	type set struct {
		name, split string
		ll          []float64
	}
	score := func(name, split string, limit int) (set, error) {
		im, err := LoadData(name, split, rc.Data.Embedded, rc.RealNVP.Height, rc.RealNVP.Width, rc.RealNVP.Channels)
		if err != nil {
			return set{}, fmt.Errorf("loading %s %s: %w", name, split, err)
		}
		if im.H != rc.RealNVP.Height || im.W != rc.RealNVP.Width || im.C != rc.RealNVP.Channels {
			return set{}, fmt.Errorf("dataset %s has %dx%dx%d images, the model expects %dx%dx%d",
				name, im.H, im.W, im.C, rc.RealNVP.Height, rc.RealNVP.Width, rc.RealNVP.Channels)
		}
		ll, err := scorer.Score(im, limit)
		return set{name, split, ll}, err
	}
	heldOut, err := heldOutSplit(rc.Data.Name)
	if err != nil {
		return nil, err
	}
	in, err := score(rc.Data.Name, heldOut, opt.Limit)
	if err != nil {
		return nil, err
	}
	trainLimit := opt.Limit
	if trainLimit <= 0 || trainLimit > len(in.ll) {
		trainLimit = len(in.ll)
	}
	tr, err := score(rc.Data.Name, "train", trainLimit)
	if err != nil {
		return nil, err
	}
	sets := []set{tr, in}
	met := &Metrics{Model: rc.Model, In: summarize(in.name, in.split, in.ll, d), OOD: map[string]ood.Report{},
		OODSets: map[string]SetSummary{}, Convention: Convention}
	ts := summarize(tr.name, tr.split, tr.ll, d)
	met.Train = &ts
	for _, name := range opt.OOD {
		o, err := score(name, oodSplit(name, rc.Data.Embedded), opt.Limit)
		if err != nil {
			return nil, err
		}
		rep, err := ood.Evaluate(in.ll, o.ll)
		if err != nil {
			return nil, fmt.Errorf("metrics for %s: %w", name, err)
		}
		met.OOD[name] = rep
		met.OODSets[name] = summarize(o.name, o.split, o.ll, d)
		sets = append(sets, o)
	}

	dir := filepath.Join(run, "eval")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	// scores.csv
	var buf csvBuffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"dataset", "split", "index", "log_likelihood", "bits_per_dim"})
	for _, s := range sets {
		for i, v := range s.ll {
			w.Write([]string{s.name, s.split, strconv.Itoa(i), strconv.FormatFloat(v, 'g', 10, 64),
				strconv.FormatFloat(ood.BitsPerDim(v, d), 'g', 8, 64)})
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
	if err := viz.Histogram(filepath.Join(dir, "loglik-hist.png"), title, "log-likelihood (nats, density on [0,1)^D)", series, 60); err != nil {
		return nil, err
	}
	return met, nil
}

type csvBuffer struct{ b []byte }

func (c *csvBuffer) Write(p []byte) (int, error) { c.b = append(c.b, p...); return len(p), nil }

func summarize(name, split string, ll []float64, d int) SetSummary {
	var s, sb float64
	for _, v := range ll {
		s += v
		sb += ood.BitsPerDim(v, d)
	}
	n := float64(len(ll))
	return SetSummary{Dataset: name, Split: split, N: len(ll), MeanLogLik: JSONFloat(s / n), MeanBPD: JSONFloat(sb / n)}
}

// PrintTable writes the metrics as an aligned table with the paper's
// AUROC beside each OOD set.
func (m *Metrics) PrintTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "set\tn\tmean bits/dim\tAUROC\tAUPR-in\tAUPR-out\tFPR@95TPR\tpaper AUROC\t\n")
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
		r, s := m.OOD[n], m.OODSets[n]
		paper := "-"
		if v, ok := PaperAUROC[m.Model][m.In.Dataset][n]; ok {
			paper = fmt.Sprintf("%.3f", v/100)
		}
		fmt.Fprintf(tw, "%s %s (OOD)\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t\n", s.Dataset, s.Split, s.N, s.MeanBPD,
			r.AUROC, r.AUPRIn, r.AUPROut, r.FPRAt95TPR, paper)
	}
	tw.Flush()
	fmt.Fprintln(w, "AUROC: in-distribution positive, score = log-likelihood (paper's convention); < 0.5 means OOD data gets HIGHER likelihood.")
}
