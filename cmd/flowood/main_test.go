package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// TestErrors checks that bad input gives one clear error naming what and
// where, never a panic.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(filepath.Join(bad, "checkpoint", "latest"), 0o755)
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(`{"version":1,"model":"realnvp","preset":"tiny","realnvp":{"mid":4,"blocks":1},"data":{"name":"fashionmnist","embedded":true},"train":{}}`), 0o644)
	os.WriteFile(filepath.Join(bad, "checkpoint", "latest", "model.safetensors"), []byte("garbage"), 0o644)
	os.WriteFile(filepath.Join(bad, "checkpoint", "latest", "state.json"), []byte(`{"format_version":1,"step":0,"epoch":0,"batch_in_epoch":0,"best_test_bpd":0,"actnorm_initialized":false}`), 0o644)
	notJSON := filepath.Join(dir, "notjson")
	os.MkdirAll(notJSON, 0o755)
	os.WriteFile(filepath.Join(notJSON, "config.json"), []byte("{"), 0o644)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}},
		{[]string{"train", "--data", "cifar99", "--out", dir + "/x"}, []string{"cifar99", "unknown dataset"}},
		{[]string{"train", "--preset", "huge", "--out", dir + "/x"}, []string{`unknown preset "huge"`}},
		{[]string{"train", "--batch", "1", "--out", dir + "/x"}, []string{"--batch 1"}},
		{[]string{"train", "--lr", "-3", "--out", dir + "/x"}, []string{"--lr -3"}},
		{[]string{"train", "--epochs", "x", "--out", dir + "/x"}, []string{"invalid value"}},
		{[]string{"train", "--lr", "NaN", "--out", dir + "/x"}, []string{"--lr NaN"}},
		{[]string{"train", "--clip", "+Inf", "--out", dir + "/x"}, []string{"--clip +Inf"}},
		{[]string{"train", "--train-limit", "-5", "--out", dir + "/x"}, []string{"--train-limit -5"}},
		{[]string{"train"}, []string{"--out RUN is required"}},
		{[]string{"train", "--data", "notmnist", "--embedded", "--preset", "tiny", "--out", dir + "/nm"}, []string{"notmnist", "train"}},
		{[]string{"eval", filepath.Join(dir, "nope")}, []string{"not a run folder", "config.json"}},
		{[]string{"eval", notJSON}, []string{filepath.Join(notJSON, "config.json")}},
		{[]string{"eval", bad, "--ood", "mnist"}, []string{"model.safetensors"}},
		{[]string{"eval", bad, "--ood", "svhn9"}, []string{"svhn9"}},
		{[]string{"eval", bad, "--limit", "-1"}, []string{"--limit -1"}},
		{[]string{"eval", bad, "--ood", "mnist", "--resize-variants", "area,cubic"}, []string{"resize variant", "cubic", "nearest"}},
		{[]string{"eval"}, []string{"one run folder"}},
		{[]string{"demo", "--epochs", "0"}, []string{"--epochs 0"}},
	} {
		_, _, err := runCLI(t, c.args...)
		if err == nil {
			t.Errorf("%v: no error", c.args)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine") {
			t.Errorf("%v: error is not one line: %q", c.args, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%v: error %q does not mention %q", c.args, msg, w)
			}
		}
	}
}

// TestTrainEval runs the CLI contract end to end on embedded data with
// the tiny preset: train writes the run folder, eval writes scores.csv,
// metrics.json and the histogram.
func TestTrainEval(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if _, stderr, err := runCLI(t, "train", "--model", "realnvp", "--data", "fashionmnist", "--preset", "tiny",
		"--embedded", "--max-steps", "3", "--batch", "16", "--train-limit", "64", "--test-limit", "32", "--seed", "2", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	for _, f := range []string{"config.json", "train-log.csv", "checkpoint/latest/model.safetensors", "checkpoint/latest/state.json", "checkpoint/best/model.safetensors"} {
		if _, err := os.Stat(filepath.Join(run, f)); err != nil {
			t.Errorf("train did not write %s: %v", f, err)
		}
	}
	stdout, stderr, err := runCLI(t, "eval", run, "--ood", "mnist,notmnist", "--limit", "40")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	for _, w := range []string{"mnist test (OOD)", "notmnist test (OOD)", "AUROC"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("eval table lacks %q:\n%s", w, stdout)
		}
	}
	rows := readScores(t, run)
	if got := strings.Join(rows[0], ","); got != "dataset,split,index,log_likelihood,bits_per_dim" {
		t.Errorf("scores.csv header %q", got)
	}
	if len(rows) != 1+4*40 { // train, test, mnist, notmnist
		t.Errorf("scores.csv has %d rows, want %d", len(rows), 1+4*40)
	}
	var met struct {
		In  json.RawMessage `json:"in"`
		OOD map[string]map[string]struct {
			AUROC, AUPRIn, AUPROut, FPR float64
			NIn                         int        `json:"n_in"`
			NOut                        int        `json:"n_out"`
			CI                          [2]float64 `json:"auroc_ci"`
		} `json:"ood"`
	}
	b, err := os.ReadFile(filepath.Join(run, "eval", "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &met); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mnist", "notmnist"} {
		r, ok := met.OOD[name]["loglik"]
		if !ok || r.NIn != 40 || r.NOut != 40 || r.CI[0] > r.AUROC || r.CI[1] < r.AUROC {
			t.Errorf("metrics.json ood[%s] = %+v", name, r)
		}
		// The AUROC is what the scores give, counted pair by pair.
		if want := pairAUROC(scoresOf(rows, "fashionmnist", "test"), scoresOf(rows, name, "test")); math.Abs(r.AUROC-want) > 1e-9 {
			t.Errorf("metrics.json ood[%s].auroc = %v, scores.csv gives %v", name, r.AUROC, want)
		}
	}
	// The threshold accepts at least 95% of the in-distribution test
	// scores, and no higher threshold does.
	var thr struct {
		LogLikelihood float64 `json:"log_likelihood"`
	}
	if b, err := os.ReadFile(filepath.Join(run, "eval", "threshold.json")); err != nil {
		t.Error(err)
	} else if err := json.Unmarshal(b, &thr); err != nil {
		t.Error(err)
	} else {
		in := scoresOf(rows, "fashionmnist", "test")
		accepted, above := 0, 0
		for _, v := range in {
			if v >= thr.LogLikelihood {
				accepted++
			}
			if v > thr.LogLikelihood {
				above++
			}
		}
		if float64(accepted) < 0.95*float64(len(in)) || float64(above) >= 0.95*float64(len(in)) {
			t.Errorf("threshold %v accepts %d and exceeds %d of %d in-distribution scores", thr.LogLikelihood, accepted, above, len(in))
		}
	}
	for _, key := range []string{`"auroc"`, `"aupr_in"`, `"aupr_out"`, `"fpr_at_95_tpr"`, `"convention"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("metrics.json lacks %s", key)
		}
	}
	if _, err := os.Stat(filepath.Join(run, "eval", "loglik-hist.png")); err != nil {
		t.Error(err)
	}
	// resume continues the same run folder, but not with another batch size
	if _, _, err := runCLI(t, "train", "--out", run, "--resume", "--max-steps", "4", "--batch", "8"); err == nil || !strings.Contains(err.Error(), "batch size 16") {
		t.Errorf("resume with --batch 8: %v, want a refusal naming the run's batch size 16", err)
	}
	if _, stderr, err := runCLI(t, "train", "--out", run, "--resume", "--max-steps", "4"); err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr)
	}
}

// TestCIFARvsCelebA trains a tiny RealNVP on CIFAR-10 from the mirror and
// evaluates it against CelebA (resized to 32x32 as in the paper): issue 4's
// end-to-end check. It needs FLOWOOD_MIRROR.
func TestCIFARvsCelebA(t *testing.T) {
	if os.Getenv("FLOWOOD_MIRROR") == "" || testing.Short() {
		t.Skip("needs FLOWOOD_MIRROR (the offline dataset mirror)")
	}
	run := filepath.Join(t.TempDir(), "cifar")
	if _, stderr, err := runCLI(t, "train", "--data", "cifar10", "--preset", "tiny", "--max-steps", "3",
		"--batch", "16", "--train-limit", "256", "--test-limit", "64", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	stdout, stderr, err := runCLI(t, "eval", run, "--ood", "celeba", "--limit", "64", "--resize-variants", "nearest")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	for _, w := range []string{"cifar10 test", "celeba train (OOD)", "celeba@nearest", "Note: resized differently", "centre crop 74x74"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("eval table lacks %q:\n%s", w, stdout)
		}
	}
	rows := readScores(t, run)
	var met struct {
		OOD map[string]map[string]struct{ AUROC float64 } `json:"ood"`
	}
	b, err := os.ReadFile(filepath.Join(run, "eval", "metrics.json"))
	if err == nil {
		err = json.Unmarshal(b, &met)
	}
	if err != nil {
		t.Fatal(err)
	}
	in, out := scoresOf(rows, "cifar10", "test"), scoresOf(rows, "celeba", "train")
	if len(in) != 64 || len(out) != 64 {
		t.Fatalf("scores.csv: %d cifar10 and %d celeba scores, want 64 each", len(in), len(out))
	}
	if want := pairAUROC(in, out); math.Abs(met.OOD["celeba"]["loglik"].AUROC-want) > 1e-9 {
		t.Errorf("celeba AUROC %v, scores.csv gives %v", met.OOD["celeba"]["loglik"].AUROC, want)
	}
}

// readScores reads RUN/eval/scores.csv.
func readScores(t *testing.T, run string) [][]string {
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

// scoresOf returns the log-likelihoods scores.csv holds for a set.
func scoresOf(rows [][]string, dataset, split string) []float64 {
	var out []float64
	for _, r := range rows[1:] {
		if r[0] == dataset && r[1] == split {
			v, err := strconv.ParseFloat(r[3], 64)
			if err == nil {
				out = append(out, v)
			}
		}
	}
	return out
}

// pairAUROC is the AUROC with in-distribution positive counted over all
// pairs: P(score_in > score_out) + P(tie)/2.
func pairAUROC(in, out []float64) float64 {
	var s float64
	for _, a := range in {
		for _, b := range out {
			switch {
			case a > b:
				s++
			case a == b:
				s += 0.5
			}
		}
	}
	return s / float64(len(in)*len(out))
}
