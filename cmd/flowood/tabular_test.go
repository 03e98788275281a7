package main

import (
	"encoding/csv"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
)

// trainLog reads RUN/train-log.csv: its header and, per row, the step
// and the logged training loss.
func trainLog(t *testing.T, run string) (header []string, losses []float64) {
	t.Helper()
	f, err := os.Open(filepath.Join(run, "train-log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[2], 64)
		if err != nil {
			t.Fatalf("train-log.csv row %v: %v", r, err)
		}
		losses = append(losses, v)
	}
	return rows[0], losses
}

// checkTabularRun checks what train and eval wrote for a tabular run:
// losses in nats per dimension that went down, and scores for the
// trained-on and held-out splits.
func checkTabularRun(t *testing.T, run, dataset, trainSplit, testSplit string) map[string]json.RawMessage {
	t.Helper()
	header, losses := trainLog(t, run)
	if got := strings.Join(header, ","); !strings.Contains(got, "train_nats_per_dim,test_nats_per_dim") {
		t.Errorf("train-log.csv header %q does not say nats per dimension", got)
	}
	if len(losses) < 2 || !(losses[len(losses)-1] < losses[0]) {
		t.Errorf("training loss did not decrease: %v", losses)
	}
	rows := readScores(t, run)
	if got := strings.Join(rows[0], ","); got != "dataset,split,index,log_likelihood,nats_per_dim" {
		t.Errorf("scores.csv header %q", got)
	}
	if len(scoresOf(rows, dataset, trainSplit)) == 0 || len(scoresOf(rows, dataset, testSplit)) == 0 {
		t.Errorf("scores.csv lacks %s %s or %s %s", dataset, trainSplit, dataset, testSplit)
	}
	// nats_per_dim is -log_likelihood / D.
	var cfg struct {
		Data struct {
			Features   int    `json:"features"`
			TrainSplit string `json:"train_split"`
		} `json:"data"`
	}
	b, err := os.ReadFile(filepath.Join(run, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows[1:4] {
		ll, _ := strconv.ParseFloat(r[3], 64)
		npd, _ := strconv.ParseFloat(r[4], 64)
		if math.Abs(npd+ll/float64(cfg.Data.Features)) > 1e-6*math.Max(1, math.Abs(npd)) {
			t.Errorf("scores.csv row %v: nats_per_dim is not -log_likelihood/%d", r, cfg.Data.Features)
		}
	}
	if want := map[bool]string{true: "", false: trainSplit}[trainSplit == "train"]; cfg.Data.TrainSplit != want {
		t.Errorf("config.json data.train_split %q, want %q", cfg.Data.TrainSplit, want)
	}
	var met map[string]json.RawMessage
	b, err = os.ReadFile(filepath.Join(run, "eval", "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &met); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(met["in"]), `"mean_nats_per_dim"`) || string(met["unit"]) != `"nats/dim"` {
		t.Errorf("metrics.json does not say nats per dimension: in %s, unit %s", met["in"], met["unit"])
	}
	if _, err := os.Stat(filepath.Join(run, "eval", "loglik-hist.png")); err != nil {
		t.Error(err)
	}
	return met
}

// TestTabularMiniBooNE trains the tiny tabular model on the real
// MINIBOONE of the mirror (MAF's val split, as it has no train split) and
// evaluates it on test, with no OOD set.
func TestTabularMiniBooNE(t *testing.T) {
	mirror := os.Getenv("FLOWOOD_MIRROR")
	if mirror == "" {
		t.Skip("FLOWOOD_MIRROR is not set: MINIBOONE (val.npy, test.npy) is read from the offline mirror only")
	}
	if _, err := os.Stat(filepath.Join(mirror, "miniboone", "val.npy")); err != nil {
		t.Skipf("the mirror %s has no MINIBOONE: %v", mirror, err)
	}
	run := filepath.Join(t.TempDir(), "run")
	_, stderr, err := runCLI(t, "train", "--model", "tabular", "--data", "miniboone", "--preset", "tiny", "--epochs", "3", "--out", run)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "training on its val split and evaluating on test") {
		t.Errorf("train does not say it trains on val:\n%s", stderr)
	}
	stdout, stderr, err := runCLI(t, "eval", run)
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "mean nats/dim") || !strings.Contains(stdout, "miniboone test") {
		t.Errorf("eval table:\n%s", stdout)
	}
	checkTabularRun(t, run, "miniboone", "val", "test")
}

// writeGaussianNPZ writes an .npz fixture of correlated Gaussian feature
// vectors (x = A·g + shift, g standard normal, A fixed by the seed): one
// rows x d array per split name.
func writeGaussianNPZ(t *testing.T, path string, d int, shift float64, rows map[string]int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	a := make([]float64, d*d)
	for i := range a {
		a[i] = rng.NormFloat64() / math.Sqrt(float64(d))
	}
	var arrays []*data.Array
	for name, n := range rows {
		x := make([]float32, n*d)
		g := make([]float64, d)
		for r := 0; r < n; r++ {
			for j := range g {
				g[j] = rng.NormFloat64()
			}
			for i := 0; i < d; i++ {
				v := shift
				for j := 0; j < d; j++ {
					v += a[i*d+j] * g[j]
				}
				x[r*d+i] = float32(v)
			}
		}
		arrays = append(arrays, &data.Array{Name: name, DType: "<f4", Shape: []int{n, d}, F32: x})
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := data.WriteNPZ(f, arrays, false); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTabularNPZ trains on an .npz fixture written here, evaluates it
// against an OOD .npz of the same feature count (shifted: it must get
// lower likelihood), and refuses an OOD file of another feature count
// with an error naming the file and both counts.
func TestTabularNPZ(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.npz")
	writeGaussianNPZ(t, in, 6, 0, map[string]int{"train": 640, "test": 200})
	ood := filepath.Join(dir, "ood.npz")
	writeGaussianNPZ(t, ood, 6, 3, map[string]int{"test": 200})
	wide := filepath.Join(dir, "wide.npz")
	writeGaussianNPZ(t, wide, 9, 0, map[string]int{"embeddings": 50})
	run := filepath.Join(dir, "run")
	if _, stderr, err := runCLI(t, "train", "--model", "tabular", "--data", in, "--preset", "tiny", "--epochs", "4", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	stdout, stderr, err := runCLI(t, "eval", run, "--ood", ood)
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "(OOD)") {
		t.Errorf("eval table lacks the OOD set:\n%s", stdout)
	}
	met := checkTabularRun(t, run, in, "train", "test")
	var reports map[string]map[string]struct {
		AUROC float64 `json:"auroc"`
	}
	if err := json.Unmarshal(met["ood"], &reports); err != nil {
		t.Fatal(err)
	}
	if r, ok := reports[ood]["loglik"]; !ok || !(r.AUROC > 0.9) {
		t.Errorf("metrics.json ood = %s: want %s with AUROC > 0.9 (shifted by 3)", met["ood"], ood)
	}
	_, _, err = runCLI(t, "eval", run, "--ood", wide)
	if err == nil || !strings.Contains(err.Error(), wide) || !strings.Contains(err.Error(), "9-feature") || !strings.Contains(err.Error(), "6-feature") {
		t.Errorf("OOD file of 9 features for a 6-feature model: %v", err)
	}
	_, _, err = runCLI(t, "train", "--model", "realnvp", "--data", in, "--preset", "tiny", "--out", filepath.Join(dir, "r2"))
	if err == nil || !strings.Contains(err.Error(), "tabular") {
		t.Errorf("realnvp on an .npz table: %v", err)
	}
}

// TestTabularResume checks that a tabular run stopped after two epochs
// and resumed for two more ends with the weights and optimiser state, bit
// for bit, of a run of four epochs straight through (AdamW's moments and
// the data order are in the checkpoint).
func TestTabularResume(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.npz")
	writeGaussianNPZ(t, in, 5, 0, map[string]int{"train": 320, "test": 64})
	straight, split := filepath.Join(dir, "straight"), filepath.Join(dir, "split")
	args := []string{"train", "--model", "tabular", "--data", in, "--preset", "tiny", "--seed", "3"}
	if _, stderr, err := runCLI(t, append(args, "--epochs", "4", "--out", straight)...); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	if _, stderr, err := runCLI(t, append(args, "--epochs", "2", "--out", split)...); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	if _, stderr, err := runCLI(t, "train", "--out", split, "--resume", "--epochs", "4"); err != nil {
		t.Fatalf("train --resume: %v\n%s", err, stderr)
	}
	for _, f := range []string{"model.safetensors", "optimizer.safetensors"} {
		if !sameFile(t, filepath.Join(straight, "checkpoint", "latest", f), filepath.Join(split, "checkpoint", "latest", f)) {
			t.Errorf("latest/%s differs between the straight and the resumed run", f)
		}
	}
}
