package experiment

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
)

// tinyModelConfig is the configuration of a tiny run of model on the
// embedded FashionMNIST: a few steps with the given seed.
func tinyModelConfig(t *testing.T, model string, seed uint64) RunConfig {
	t.Helper()
	rc, err := NewRunConfig(model, "tiny", "fashionmnist")
	if err != nil {
		t.Fatal(err)
	}
	rc.Data.Embedded = true
	rc.Train.MaxSteps, rc.Train.Seed, rc.Train.TestLimit = 3, seed, 32
	if err := rc.Resolve(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// tinyModelRun trains tinyModelConfig(model, seed) into dir.
func tinyModelRun(t *testing.T, model, dir string, seed uint64) RunConfig {
	t.Helper()
	rc := tinyModelConfig(t, model, seed)
	if _, err := Train(context.Background(), rc, dir, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	return rc
}

// tinyRun trains a tiny RealNVP on the embedded FashionMNIST for a few
// steps into dir, with the given seed.
func tinyRun(t *testing.T, dir string, seed uint64) RunConfig {
	t.Helper()
	return tinyModelRun(t, "realnvp", dir, seed)
}

// TestEvaluateScores runs an evaluation with every score that needs no
// specially trained reference (ic, ic_lzma, typicality with the batch
// test, lr and waic against other tiny runs standing in for a background
// model and ensemble members) and checks each scores.csv column against
// an independent computation: PNG files encoded here from the dataset's
// pixels, the training mean from scores.csv, and the reference models'
// log-likelihoods scored here.
func TestEvaluateScores(t *testing.T) {
	root := t.TempDir()
	run, other, third := filepath.Join(root, "run"), filepath.Join(root, "other"), filepath.Join(root, "third")
	rc := tinyRun(t, run, 1)
	tinyRun(t, other, 2)
	tinyRun(t, third, 3)
	const n = 24
	met, err := Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, Limit: n,
		Scores: []string{"ic", "ic_lzma", "typicality", "lr", "waic", "dose"}, Background: other, Ensemble: []string{other, third},
		BatchTest: 4, Bootstrap: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range []string{"loglik", "ic", "ic_lzma", "typicality", "lr", "waic", "dose", "typicality_batch"} {
		r, ok := met.OOD["mnist"][sc]
		if !ok || r.AUROCCI == nil || r.AUROCCI[0] > r.AUROC || r.AUROCCI[1] < r.AUROC {
			t.Errorf("metrics of %s: %+v", sc, r)
		}
	}
	if r := met.OOD["mnist"]["typicality_batch"]; r.NIn != n/4 || r.NOut != n/4 {
		t.Errorf("typicality_batch over %d and %d batches, want %d of 4", r.NIn, r.NOut, n/4)
	}

	rows := readScoresCSV(t, run)
	if got := strings.Join(rows[0], ","); got != "dataset,split,index,log_likelihood,bits_per_dim,ic,ic_lzma,typicality,lr,waic,dose" {
		t.Fatalf("scores.csv header %s", got)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	num := func(r []string, c string) float64 {
		v, err := strconv.ParseFloat(r[col[c]], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	var trainMean float64
	var trainN int
	for _, r := range rows[1:] {
		if r[1] == "train" {
			trainMean += num(r, "log_likelihood")
			trainN++
		}
	}
	trainMean /= float64(trainN)

	// The reference models, scored here on the same examples with the
	// evaluation's dequantisation (seed: the run's + 1, batch 256).
	refs := map[string]map[string][]float64{} // run -> set -> lls

	for _, ref := range []string{other, third} {
		m, err := loadReference(ref, rc, "ref")
		if err != nil {
			t.Fatal(err)
		}
		refs[ref] = map[string][]float64{}
		for _, set := range []struct{ name, split string }{{"fashionmnist", "train"}, {"fashionmnist", "test"}, {"mnist", "test"}} {
			x, err := LoadExamples(rc.Data, set.name, set.split)
			if err != nil {
				t.Fatal(err)
			}
			var idx []int
			for _, r := range rows[1:] {
				if r[0] == set.name && r[1] == set.split {
					i, _ := strconv.Atoi(r[2])
					idx = append(idx, i)
				}
			}
			x = subset(x, idx)
			ll, err := (&ood.LogLikelihood{Model: m, Seed: rc.Train.Seed + 1, ImageNoise: true}).Score(context.Background(), x, 0)
			if err != nil {
				t.Fatal(err)
			}
			refs[ref][set.name+" "+set.split] = ll
		}
	}

	images := map[string]*data.Images{}
	k := map[string]int{}
	for _, r := range rows[1:] {
		name, split := r[0], r[1]
		im := images[name+split]
		if im == nil {
			if im, err = data.Load(name, split, data.Options{Embedded: true}); err != nil {
				t.Fatal(err)
			}
			images[name+split] = im
		}
		i, _ := strconv.Atoi(r[2])
		ll := num(r, "log_likelihood")
		g := &image.Gray{Pix: im.Pix[i*784 : (i+1)*784], Stride: 28, Rect: image.Rect(0, 0, 28, 28)}
		var b bytes.Buffer
		(&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, g)
		if want := ll + float64(8*b.Len())*math.Ln2; math.Abs(num(r, "ic")-want) > 1e-9*math.Abs(want) {
			t.Errorf("%s %s %d: ic %v, want log p + 8·len(PNG)·ln 2 = %v", name, split, i, num(r, "ic"), want)
		}
		if want := -math.Abs(ll - trainMean); math.Abs(num(r, "typicality")-want) > 1e-6 {
			t.Errorf("%s %s %d: typicality %v, want -|log p - train mean| = %v", name, split, i, num(r, "typicality"), want)
		}
		key := name + " " + split
		j := k[key]
		k[key]++
		a, c := refs[other][key][j], refs[third][key][j]
		if want := ll - a; math.Abs(num(r, "lr")-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s %d: lr %v, want log p - log p_bg = %v", key, i, num(r, "lr"), want)
		}
		mean := (ll + a + c) / 3
		want := mean - ((ll-mean)*(ll-mean)+(a-mean)*(a-mean)+(c-mean)*(c-mean))/3
		if math.Abs(num(r, "waic")-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("%s %d: waic %v, want %v", key, i, num(r, "waic"), want)
		}
		if num(r, "ic_lzma") <= ll {
			t.Errorf("%s %d: ic_lzma %v not above log p %v", key, i, num(r, "ic_lzma"), ll)
		}
	}
	checkCalibration(t, run, rows, trainMean, map[string][]string{"lr": {"../other"}, "waic": {"../other", "../third"}})

	b, _ := os.ReadFile(filepath.Join(run, "eval", "metrics.json"))
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["ood"].(map[string]any)["mnist"].(map[string]any)["ic"].(map[string]any)["auroc_ci"]; !ok {
		t.Errorf("metrics.json lacks ood.mnist.ic.auroc_ci")
	}
}

func TestScorePlanErrors(t *testing.T) {
	rc, err := NewRunConfig("realnvp", "tiny", "fashionmnist")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opt  EvalOptions
		want string
	}{
		{EvalOptions{Scores: []string{"magic"}}, `unknown score "magic"`},
		{EvalOptions{Scores: []string{"lr"}}, "score lr needs --background RUN"},
		{EvalOptions{Scores: []string{"waic"}}, "score waic needs --ensemble"},
		{EvalOptions{Scores: []string{"general"}}, "score general needs --general RUN"},
		{EvalOptions{Background: "x"}, "--background RUN is given but --score does not ask for lr"},
		{EvalOptions{BatchTest: 4}, "--batch-test 4: give a positive batch size, with --score typicality"},
		{EvalOptions{Scores: []string{"lr"}, Background: filepath.Join(t.TempDir(), "none")}, "--background"},
	} {
		if _, err := planScores(c.opt, rc, ""); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one containing %q", c.opt, err, c.want)
		}
	}
}

// TestTraceStats checks that DoSE's statistics are taken on the inputs
// the log-likelihood was scored on: its log_p is the scorer's
// log-likelihood, example by example, up to float32 rounding.
func TestTraceStats(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	rc := tinyRun(t, run, 4)
	m, err := loadReference(run, rc, "run")
	if err != nil {
		t.Fatal(err)
	}
	x, err := LoadExamples(rc.Data, "", "test")
	if err != nil {
		t.Fatal(err)
	}
	x, _ = limitExamples(x, 40, false, 1)
	scorer := &ood.LogLikelihood{Model: m, Seed: 9, Batch: 16}
	ll, err := scorer.Score(context.Background(), x, 0)
	if err != nil {
		t.Fatal(err)
	}
	names, _, stats, err := traceStats(context.Background(), scorer, x, len(ll))
	if err != nil {
		t.Fatal(err)
	}
	if names[0] != "log_p" || len(stats[0]) != len(ll) || len(names) < 4 {
		t.Fatalf("statistics %v", names)
	}
	for i, v := range ll {
		if math.Abs(stats[0][i]-v) > 1e-5*math.Abs(v) {
			t.Errorf("example %d: log_p %v, scored %v", i, stats[0][i], v)
		}
	}
}

// checkCalibration checks RUN/eval/thresholds.json against scores.csv's
// rows: every score's threshold is, computed here by sorting the
// in-distribution test scores by hand, the k-th largest with k the
// smallest integer such that k/n >= 0.95; typicality records the
// training mean; the reference runs are recorded relative to the run;
// dose's state file exists. refs gives the expected relative paths.
func checkCalibration(t *testing.T, run string, rows [][]string, trainMean float64, refs map[string][]string) {
	t.Helper()
	cal, err := runfile.ReadCalibration(run)
	if err != nil {
		t.Fatal(err)
	}
	head := rows[0]
	var names []string
	for _, h := range head[5:] {
		names = append(names, h)
	}
	if got, want := strings.Join(cal.Names(), ","), "loglik,"+strings.Join(names, ","); got != want {
		t.Errorf("thresholds.json scores %s, want %s", got, want)
	}
	for c, h := range head {
		name := h
		if h == "log_likelihood" {
			name = "loglik"
		}
		sc, ok := cal.Score(name)
		if c < 5 && name != "loglik" {
			continue
		}
		if !ok {
			t.Errorf("thresholds.json lacks %s", name)
			continue
		}
		var in []float64
		for _, r := range rows[1:] {
			if r[0] == "fashionmnist" && r[1] == "test" {
				v, err := strconv.ParseFloat(r[c], 64)
				if err != nil {
					t.Fatal(err)
				}
				in = append(in, v)
			}
		}
		// sort descending by hand (insertion sort)
		for i := 1; i < len(in); i++ {
			for j := i; j > 0 && in[j] > in[j-1]; j-- {
				in[j], in[j-1] = in[j-1], in[j]
			}
		}
		k := 1
		for float64(k)/float64(len(in)) < 0.95 {
			k++
		}
		if want := in[k-1]; float64(sc.Threshold) != want {
			t.Errorf("%s: threshold %v, want the %d-th largest of %d: %v", name, float64(sc.Threshold), k, len(in), want)
		}
		accepted := 0
		for _, v := range in {
			if v >= float64(sc.Threshold) {
				accepted++
			}
		}
		if accepted < 23 { // of 24
			t.Errorf("%s: threshold accepts %d of %d", name, accepted, len(in))
		}
		var got []string
		for _, r := range sc.References {
			got = append(got, r.Path)
			if !filepath.IsAbs(r.Abs) || r.Checkpoint == "" || len(r.ModelSHA256) != 64 {
				t.Errorf("%s: reference %+v", name, r)
			}
		}
		if strings.Join(got, ",") != strings.Join(refs[name], ",") {
			t.Errorf("%s: references %v, want %v", name, got, refs[name])
		}
		switch name {
		case "typicality":
			if sc.TrainMean == nil || math.Abs(float64(*sc.TrainMean)-trainMean) > 1e-9*math.Abs(trainMean) {
				t.Errorf("typicality: train mean %v, want %v", sc.TrainMean, trainMean)
			}
		case "dose":
			if _, err := os.Stat(filepath.Join(run, filepath.FromSlash(sc.State))); sc.State == "" || err != nil {
				t.Errorf("dose: state %q: %v", sc.State, err)
			}
		}
	}
	if len(cal.ModelSHA256) != 64 || cal.Checkpoint == "" || cal.N != 24 || cal.Dequantization == "" {
		t.Errorf("thresholds.json: %+v", cal)
	}
}

// readScoresCSV returns the rows of RUN/eval/scores.csv, header first.
func readScoresCSV(t *testing.T, run string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(run, "eval", "scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
