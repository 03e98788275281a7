package experiment

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/viz"
)

// ViewOptions selects what a view of a trained run shows.
type ViewOptions struct {
	// Data is the in-distribution dataset (default: the run's own); its
	// held-out split is shown.
	Data string
	// OOD lists out-of-distribution datasets shown beside it.
	OOD []string
	// N is the number of examples per set (a random subset drawn with
	// Seed, as flowood eval --limit draws it); 0 means 500.
	N    int
	Seed uint64
	// Index, when not empty, picks the examples by their index in each
	// set's split instead of a random subset (views of single examples).
	Index []int
	// Out is the folder the view's files are written to.
	Out string
}

// LogDetTerm is one term of log p(x) averaged over a set.
type LogDetTerm struct {
	Term string
	// Kind says what the layer is ("affine coupling, checkerboard mask",
	// "Squeeze", ...); empty for the prior.
	Kind     string
	Mean, SD float64
}

// LogDetView writes the view no reference implementation has: each term
// of log p(x) = prior + the sum of the layers' log-dets, averaged over
// the in-distribution test set and each OOD set, to show which layers
// give OOD data its likelihood. Files in opt.Out: logdet.png (the means),
// logdet-diff.png (OOD minus in-distribution, per term), logdet.csv
// (set, term, mean, sd, n, layer: what the layer is) and logdet.npy (float64 means, sets x terms,
// rows and columns in logdet.csv's order). The examples and their
// dequantisation are flowood eval's for the same --limit and --seed, so
// the terms' means add up to the mean log-likelihood eval reports.
func LogDetView(ctx context.Context, run string, opt ViewOptions) (map[string][]LogDetTerm, error) {
	rc, err := ReadRunConfig(run)
	if err != nil {
		return nil, err
	}
	m, err := loadReference(run, rc, "run")
	if err != nil {
		return nil, err
	}
	if opt.N <= 0 {
		opt.N = 500
	}
	if len(opt.Index) > 0 {
		return nil, fmt.Errorf("logdet view: means over sets; --index picks single examples (use --n)")
	}
	if opt.Data == "" {
		opt.Data = rc.Data.Name
	}
	split, err := heldOutSplit(opt.Data)
	if err != nil {
		return nil, err
	}
	type set struct{ name, split string }
	sets := []set{{opt.Data, split}}
	for _, o := range opt.OOD {
		sets = append(sets, set{o, oodSplit(o, rc.Data.Embedded)})
	}
	scorer := &ood.LogLikelihood{Model: m, Seed: rc.Train.Seed + 1}
	out := map[string][]LogDetTerm{}
	var terms, termKinds []string
	var means [][]float64
	var rows [][]string
	for _, s := range sets {
		x, err := LoadExamples(rc.Data, s.name, s.split)
		if err != nil {
			return nil, fmt.Errorf("loading %s %s: %w", s.name, s.split, err)
		}
		x, _ = limitExamples(x, opt.N, false, opt.Seed)
		names, kinds, stats, err := traceStats(ctx, scorer, x, x.Len())
		if err != nil {
			return nil, err
		}
		// terms: the prior and each layer (names[3:]); log_p and the
		// latent norm are not terms of the sum
		idx := append([]int{1}, seq(3, len(names))...)
		if terms == nil {
			for _, i := range idx {
				terms = append(terms, names[i])
				termKinds = append(termKinds, kinds[i])
			}
		}
		label := s.name + " " + s.split
		var row []float64
		for k, i := range idx {
			mean, sd := meanSD(stats[i])
			out[label] = append(out[label], LogDetTerm{terms[k], termKinds[k], mean, sd})
			row = append(row, mean)
			rows = append(rows, []string{label, terms[k], strconv.FormatFloat(mean, 'g', -1, 64),
				strconv.FormatFloat(sd, 'g', -1, 64), strconv.Itoa(len(stats[i])), termKinds[k]})
		}
		means = append(means, row)
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return nil, err
	}
	var series, diffs []viz.BarSeries
	for i, s := range sets {
		label := s.name + " " + s.split
		series = append(series, viz.BarSeries{Name: label, Values: means[i]})
		if i > 0 {
			d := make([]float64, len(terms))
			for k := range d {
				d[k] = means[i][k] - means[0][k]
			}
			diffs = append(diffs, viz.BarSeries{Name: label + " - " + sets[0].name, Values: d})
		}
	}
	title := fmt.Sprintf("%s on %s: terms of log p(x), mean over %d examples", rc.Model, rc.Data.Name, opt.N)
	labels := make([]string, len(terms))
	for k, t := range terms {
		labels[k] = barLabel(t, termKinds[k])
	}
	if err := viz.Bars(filepath.Join(opt.Out, "logdet.png"), title, "nats", labels, series); err != nil {
		return nil, err
	}
	if len(diffs) > 0 {
		if err := viz.Bars(filepath.Join(opt.Out, "logdet-diff.png"), "OOD minus in-distribution, per term of log p(x)", "nats", labels, diffs); err != nil {
			return nil, err
		}
	}
	var buf csvBuffer
	w := csv.NewWriter(&buf)
	w.Write([]string{"set", "term", "mean", "sd", "n", "layer"})
	w.WriteAll(rows)
	if err := writeFileAtomic(filepath.Join(opt.Out, "logdet.csv"), buf.b); err != nil {
		return nil, err
	}
	flat := make([]float64, 0, len(sets)*len(terms))
	for _, r := range means {
		flat = append(flat, r...)
	}
	if err := data.WriteNPYFile(filepath.Join(opt.Out, "logdet.npy"), &data.Array{DType: "<f8", Shape: []int{len(sets), len(terms)}, F64: flat}); err != nil {
		return nil, err
	}
	return out, nil
}

func seq(lo, hi int) []int {
	var s []int
	for i := lo; i < hi; i++ {
		s = append(s, i)
	}
	return s
}

func meanSD(v []float64) (float64, float64) {
	var m float64
	for _, x := range v {
		m += x
	}
	m /= float64(len(v))
	var s float64
	for _, x := range v {
		s += (x - m) * (x - m)
	}
	if len(v) < 2 {
		return m, 0
	}
	return m, math.Sqrt(s / float64(len(v)-1))
}

// barLabel is a chart's label for a term of log p(x): its layer path and
// a short kind ("1.steps.0 checkerboard", "0 Logit").
func barLabel(term, kind string) string {
	label := strings.TrimPrefix(term, "logdet:")
	kind = strings.TrimSuffix(strings.TrimPrefix(kind, "affine coupling, "), " mask")
	if kind == "" {
		return label
	}
	return label + " " + kind
}
