package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/runfile"
)

// TestMain lets a test run the flowood binary as a child process: the
// test binary itself, with FLOWOOD_TEST_MAIN=1, runs main with its
// arguments (to send it real signals).
func TestMain(m *testing.M) {
	if os.Getenv("FLOWOOD_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// flowoodCmd returns the command that runs flowood with args in a child
// process.
func flowoodCmd(args ...string) *exec.Cmd {
	c := exec.Command(os.Args[0], args...)
	c.Env = append(os.Environ(), "FLOWOOD_TEST_MAIN=1")
	return c
}

// snapshot returns the sha256 of every file under dir (but the lock
// file, which holds nothing), by path relative to dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == runfile.LockFile {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		rel, _ := filepath.Rel(dir, p)
		sums[rel] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// unchanged fails the test if dir's files differ from before.
func unchanged(t *testing.T, what, dir string, before map[string]string) {
	t.Helper()
	after := snapshot(t, dir)
	if !maps.Equal(before, after) {
		var diff []string
		for p, h := range before {
			if after[p] != h {
				diff = append(diff, p)
			}
		}
		for p := range after {
			if _, ok := before[p]; !ok {
				diff = append(diff, p+" (new)")
			}
		}
		slices.Sort(diff)
		t.Errorf("%s changed the earlier run's files: %v", what, diff)
	}
}

// tinyRun trains a tiny RealNVP on the embedded FashionMNIST subset into
// a new run folder and evaluates it, so that the folder holds every kind
// of output.
func tinyRun(t *testing.T) string {
	t.Helper()
	run := filepath.Join(t.TempDir(), "run")
	if _, stderr, err := runCLI(t, "train", "--data", "fashionmnist", "--preset", "tiny", "--embedded", "--max-steps", "3",
		"--batch", "16", "--train-limit", "64", "--test-limit", "32", "--seed", "2", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	if _, stderr, err := runCLI(t, "eval", run, "--ood", "mnist", "--limit", "20"); err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	return run
}

// wantErr fails the test unless err is a one-line error mentioning each
// of want.
func wantErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Contains(msg, "goroutine") {
		t.Errorf("%s: error is not one line: %q", what, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: error %q does not mention %q", what, msg, w)
		}
	}
}

// TestTrainRefusesExistingRun retries "flowood train --out RUN" on a run
// folder that holds a run: a clear error naming --resume and --force, and
// the run's files unchanged; --force replaces the run.
func TestTrainRefusesExistingRun(t *testing.T) {
	run := tinyRun(t)
	before := snapshot(t, run)
	_, _, err := runCLI(t, "train", "--data", "fashionmnist", "--preset", "tiny", "--embedded", "--max-steps", "2",
		"--batch", "16", "--train-limit", "64", "--out", run)
	wantErr(t, "train into an existing run", err, run, "already holds a run", "--resume", "--force")
	unchanged(t, "train into an existing run", run, before)

	// --force replaces it: a new config (seed 5), no stale evaluation
	if _, stderr, err := runCLI(t, "train", "--data", "fashionmnist", "--preset", "tiny", "--embedded", "--max-steps", "2",
		"--batch", "16", "--train-limit", "64", "--test-limit", "16", "--seed", "5", "--out", run, "--force"); err != nil {
		t.Fatalf("train --force: %v\n%s", err, stderr)
	}
	var cfg struct {
		Train struct{ Seed int } `json:"train"`
	}
	b, _ := os.ReadFile(filepath.Join(run, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Train.Seed != 5 {
		t.Errorf("after --force config.json has seed %d (%v), want 5", cfg.Train.Seed, err)
	}
	if _, err := os.Stat(filepath.Join(run, "eval")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--force left the replaced run's eval/ behind: %v", err)
	}
	_, _, err = runCLI(t, "train", "--out", run, "--resume", "--force")
	wantErr(t, "--resume --force", err, "--resume", "--force")
}

// TestTrainLocked retries a training into a run folder while another
// process holds its lock: a clear error naming the lock, and no file
// changed.
func TestTrainLocked(t *testing.T) {
	run := tinyRun(t)
	before := snapshot(t, run)
	unlock, err := runfile.Lock(run) // as another training would (flock is per open file)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "train", "--out", run, "--resume", "--max-steps", "6")
	wantErr(t, "train into a locked run", err, filepath.Join(run, ".lock"), "in use", "another flowood")
	_, _, err = runCLI(t, "train", "--data", "fashionmnist", "--preset", "tiny", "--embedded", "--out", run, "--force")
	wantErr(t, "train --force into a locked run", err, ".lock")
	unchanged(t, "train into a locked run", run, before)
	unlock()
	if _, stderr, err := runCLI(t, "train", "--out", run, "--resume", "--max-steps", "4"); err != nil {
		t.Errorf("resume once the lock is free: %v\n%s", err, stderr)
	}
}

// TestTwoTrainingsOneFolder runs a training in a child process and starts
// a second one into the same folder meanwhile: the second fails at once;
// the first is then interrupted with SIGINT and stops with its checkpoint
// saved and a non-zero exit status.
func TestTwoTrainingsOneFolder(t *testing.T) {
	if testing.Short() {
		t.Skip("child process")
	}
	run := tinyRun(t)
	child := flowoodCmd("train", "--out", run, "--resume", "--epochs", "100000", "--max-steps", "100000000")
	stderr, _ := child.StderrPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	// wait until the child holds the lock: it prints its progress line
	// once it trains
	sc := bufio.NewScanner(stderr)
	started := make(chan bool)
	go func() {
		for sc.Scan() {
			if strings.Contains(sc.Text(), "train") {
				started <- true
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-started:
	case <-time.After(60 * time.Second):
		t.Fatal("the first training did not start within 60 s")
	}
	_, _, err := runCLI(t, "train", "--out", run, "--resume", "--max-steps", "50")
	wantErr(t, "second training", err, ".lock", "another flowood")
	child.Process.Signal(os.Interrupt)
	done := make(chan error)
	go func() { done <- child.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("interrupted training exited with %v, want status 130", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the interrupted training did not stop within 30 s")
	}
	// the interrupted training saved where it stopped: past the 3 steps
	// of the first run
	var st struct{ Step int }
	b, _ := os.ReadFile(filepath.Join(run, "checkpoint", "latest", "state.json"))
	if err := json.Unmarshal(b, &st); err != nil || st.Step <= 3 {
		t.Errorf("after the interrupt the latest checkpoint is at step %d (%v), want more than 3", st.Step, err)
	}
}

// TestEvalInterrupt sends SIGINT to "flowood eval" while it scores: it
// stops within seconds with exit status 130, and the files of the
// earlier evaluation are unchanged.
func TestEvalInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("child process")
	}
	// the cpu preset scores slowly enough to be interrupted mid-way
	run := filepath.Join(t.TempDir(), "run")
	if _, stderr, err := runCLI(t, "train", "--data", "fashionmnist", "--preset", "cpu", "--embedded", "--max-steps", "1",
		"--batch", "16", "--train-limit", "32", "--test-limit", "16", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	if _, stderr, err := runCLI(t, "eval", run, "--ood", "mnist", "--limit", "16"); err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	before := snapshot(t, run)
	child := flowoodCmd("eval", run, "--ood", "mnist,notmnist", "--batch", "8")
	stderr, _ := child.StderrPipe()
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Process.Kill()
	var out strings.Builder
	scoring := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "score") {
				select {
				case scoring <- true:
				default:
				}
			}
		}
	}()
	select {
	case <-scoring:
	case <-time.After(60 * time.Second):
		t.Fatal("eval did not start scoring within 60 s")
	}
	sent := time.Now()
	child.Process.Signal(syscall.SIGINT)
	done := make(chan error)
	go func() { done <- child.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("interrupted eval exited with %v, want status 130", err)
		}
		t.Logf("eval stopped %v after SIGINT", time.Since(sent).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("eval did not stop within 10 s of SIGINT")
	}
	time.Sleep(50 * time.Millisecond) // let the reader take the last lines
	if !strings.Contains(out.String(), "interrupted") {
		t.Errorf("stderr does not say it was interrupted:\n%s", out.String())
	}
	unchanged(t, "interrupted eval", run, before)
}

// TestUncheckedValues retries values that used to run into an
// out-of-memory crash, an overflow or a silent substitution: each is a
// clear error, and the earlier run's files are unchanged.
func TestUncheckedValues(t *testing.T) {
	run := tinyRun(t)
	cfgPath := filepath.Join(run, "config.json")
	orig, _ := os.ReadFile(cfgPath)
	edit := func(old, new string) {
		t.Helper()
		b := strings.Replace(string(orig), old, new, 1)
		if b == string(orig) {
			t.Fatalf("config.json lacks %q:\n%s", old, orig)
		}
		os.WriteFile(cfgPath, []byte(b), 0o644)
	}
	for _, c := range []struct {
		old, new string
		want     []string
	}{
		{`"kind": "image",
    "height": 28`, `"kind": "image",
    "height": 1000000000`, []string{cfgPath, "data: height 1000000000 is out of range"}}, // 0
		{`"kind": "image",
    "height": 28,
    "width": 28`, `"kind": "image",
    "height": 28,
    "width": 4611686018427387904`, []string{cfgPath, "data: width 4611686018427387904 is out of range"}}, // 1
		{`"height": 28`, `"height": 1000000000`, []string{cfgPath, "model_config: height 1000000000 differs"}}, // 2: the model's
		{`"model": "realnvp"`, `"model": "glow9"`, []string{cfgPath, `unknown model "glow9"`}},
		{`"mid": 4`, `"mid": 1000000000`, []string{cfgPath, "mid 1000000000"}},                              // 3
		{`"batch": 16`, `"batch": 1000000000000`, []string{cfgPath, "batch 1000000000000"}},                 // 4
		{`"epochs": 1,`, `"epochs": 4611686018427387904,`, []string{cfgPath, "epochs 4611686018427387904"}}, // 5
	} {
		edit(c.old, c.new)
		before := snapshot(t, run)
		_, _, err := runCLI(t, "eval", run, "--ood", "mnist", "--limit", "20")
		wantErr(t, "eval with "+c.new, err, c.want...)
		_, _, err = runCLI(t, "train", "--out", run, "--resume", "--max-steps", "6")
		wantErr(t, "train --resume with "+c.new, err, c.want...)
		unchanged(t, c.new, run, before)
	}
	os.WriteFile(cfgPath, orig, 0o644)
	before := snapshot(t, run)

	// --epochs that overflow the step count: refused, for a new run
	// folder (not created) and a resumed one (unchanged)
	fresh := filepath.Join(t.TempDir(), "fresh")
	_, _, err := runCLI(t, "train", "--data", "fashionmnist", "--preset", "tiny", "--embedded", "--epochs", "4611686018427387904", "--out", fresh)
	wantErr(t, "--epochs 2^62", err, "--epochs 4611686018427387904", "1000000")
	if _, err := os.Stat(fresh); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused training created %s: %v", fresh, err)
	}
	_, _, err = runCLI(t, "train", "--out", run, "--resume", "--epochs", "4611686018427387904")
	wantErr(t, "--resume --epochs 2^62", err, "--epochs 4611686018427387904")

	// --resume with another preset, dataset or model: an error naming
	// the flag and the run's value
	for _, c := range [][]string{
		{"--preset", "paper", "tiny"},
		{"--data", "mnist", "fashionmnist"},
		{"--model", "glow", "realnvp"},
		{"--seed", "9", "2"},
		{"--train-limit", "100", "64"},
	} {
		_, _, err := runCLI(t, "train", "--out", run, "--resume", c[0], c[1])
		wantErr(t, "--resume "+c[0]+" "+c[1], err, c[0]+" "+c[1], "differs", c[2], "config.json")
	}
	unchanged(t, "refused --epochs and --resume flags", run, before)
	// the same values as the run's are accepted (nothing to point out)
	if _, stderr, err := runCLI(t, "train", "--out", run, "--resume", "--preset", "tiny", "--data", "fashionmnist", "--max-steps", "4"); err != nil {
		t.Errorf("--resume with the run's own --preset and --data: %v\n%s", err, stderr)
	}
}

// TestRandomSubsets checks that --train-limit and eval's --limit take
// seeded random subsets, recorded in config.json, metrics.json and the
// index column of scores.csv.
func TestRandomSubsets(t *testing.T) {
	run := tinyRun(t) // --train-limit 64 --seed 2; eval --limit 20 (seed 0)
	var cfg struct {
		Data runfile.Data `json:"data"`
	}
	b, _ := os.ReadFile(filepath.Join(run, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Data.TrainLimit != 64 || cfg.Data.Subset != runfile.SubsetRandom || cfg.Data.SubsetSeed != 2 {
		t.Errorf("config.json data %+v, want train_limit 64, subset random, subset_seed 2", cfg.Data)
	}
	trained := data.SampleIndices(8000, 64, 2) // the embedded training subset has 8000 images
	f, err := os.Open(filepath.Join(run, "eval", "scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := csv.NewReader(f).ReadAll()
	f.Close()
	idx := map[string][]int{}
	for _, r := range rows[1:] {
		i, _ := strconv.Atoi(r[2])
		idx[r[0]+" "+r[1]] = append(idx[r[0]+" "+r[1]], i)
	}
	if got, want := idx["fashionmnist test"], data.SampleIndices(2000, 20, 0); !slices.Equal(got, want) {
		t.Errorf("scored test indices %v, want the seed-0 subset %v", got, want)
	}
	if got, want := idx["mnist test"], data.SampleIndices(2000, 20, 0); !slices.Equal(got, want) {
		t.Errorf("scored mnist indices %v, want %v", got, want)
	}
	tr := idx["fashionmnist train"]
	if len(tr) != 20 || slices.Max(tr) < 64 {
		t.Errorf("scored training indices %v: want 20 of the random training subset, not the first 64", tr)
	}
	for _, i := range tr {
		if _, ok := slices.BinarySearch(trained, i); !ok {
			t.Errorf("scored training image %d was not trained on", i)
		}
	}
	var met struct {
		Limit      int    `json:"limit"`
		SubsetSeed uint64 `json:"subset_seed"`
	}
	b, _ = os.ReadFile(filepath.Join(run, "eval", "metrics.json"))
	if err := json.Unmarshal(b, &met); err != nil || met.Limit != 20 || met.SubsetSeed != 0 {
		t.Errorf("metrics.json limit %d seed %d (%v), want 20 and 0", met.Limit, met.SubsetSeed, err)
	}
}

// TestThresholdJSON checks RUN/eval/threshold.json against the
// in-distribution scores of scores.csv: the 95%-TPR threshold under the
// documented rule.
func TestThresholdJSON(t *testing.T) {
	run := tinyRun(t)
	thr, err := runfile.ReadThreshold(run)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(run, "eval", "scores.csv"))
	rows, _ := csv.NewReader(f).ReadAll()
	f.Close()
	var in []float64
	for _, r := range rows[1:] {
		if r[0] == "fashionmnist" && r[1] == "test" {
			v, _ := strconv.ParseFloat(r[3], 64)
			in = append(in, v)
		}
	}
	// k-th largest with k the smallest integer with k/n >= 0.95: n = 20, k = 19
	slices.Sort(in)
	slices.Reverse(in)
	want := in[18]
	if got := float64(thr.LogLikelihood); abs(got-want) > 1e-6*abs(want) || thr.TPR != 0.95 || thr.N != 20 ||
		thr.Dataset != "fashionmnist" || thr.Split != "test" || thr.Checkpoint != "best" {
		t.Errorf("threshold.json %+v, want log_likelihood %v (19th largest of 20), tpr 0.95, n 20, fashionmnist test, best (eval's default)", thr, want)
	}
	var accepted int
	for _, v := range in {
		// scores.csv holds 10 significant digits
		if v >= float64(thr.LogLikelihood)-1e-8*abs(float64(thr.LogLikelihood)) {
			accepted++
		}
	}
	if accepted != 19 {
		t.Errorf("the threshold accepts %d of 20 in-distribution scores, want 19", accepted)
	}
	// the file is valid JSON with the keys the issue names
	var raw map[string]any
	b, _ := os.ReadFile(filepath.Join(run, "eval", "threshold.json"))
	json.Unmarshal(b, &raw)
	for _, k := range []string{"log_likelihood", "tpr", "dataset", "split", "n", "checkpoint"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("threshold.json lacks %q", k)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestHelp checks that help is not an error: "flowood data -h" prints the
// data usage, "flowood help train" the flags of train, "-h" exits 0.
func TestHelp(t *testing.T) {
	out, _, err := runCLI(t, "data", "-h")
	if err != nil || !strings.Contains(out, "list") || !strings.Contains(out, "fetch") {
		t.Errorf("data -h: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "help", "train")
	if err != nil {
		t.Errorf("help train: %v", err)
	}
	for _, f := range []string{"-epochs", "-force", "-resume", "-train-limit", "-preset"} {
		if !strings.Contains(out, f) {
			t.Errorf("help train lacks %s:\n%s", f, out)
		}
	}
	out, _, err = runCLI(t, "help", "eval")
	if err != nil || !strings.Contains(out, "-limit") || !strings.Contains(out, "-seed") {
		t.Errorf("help eval: %v\n%s", err, out)
	}
	_, errOut, err := runCLI(t, "train", "-h")
	if !errors.Is(err, flag.ErrHelp) || exitCode(err, nil) != 0 || !strings.Contains(errOut, "-epochs") {
		t.Errorf("train -h: %v (exit %d)\n%s", err, exitCode(err, nil), errOut)
	}
	if _, _, err := runCLI(t, "data", "show", "-h"); exitCode(err, nil) != 0 {
		t.Errorf("data show -h: %v", err)
	}
	if exitCode(context.Canceled, nil) != 130 || exitCode(context.Canceled, syscall.SIGTERM) != 143 || exitCode(errors.New("x"), nil) != 1 {
		t.Error("exit codes")
	}
	if _, _, err := runCLI(t, "help", "frob"); err == nil {
		t.Error("help of an unknown command is not an error")
	}
	if testing.Short() {
		return
	}
	// the binary: -h exits 0
	for _, args := range [][]string{{"train", "-h"}, {"data", "-h"}, {"help", "eval"}, {"-h"}} {
		if err := flowoodCmd(args...).Run(); err != nil {
			t.Errorf("flowood %s: %v, want exit status 0", strings.Join(args, " "), err)
		}
	}
}

// TestVersion1Run evaluates and resumes a run folder whose config.json
// is in the layout flowood wrote before the model registry (version 1).
func TestVersion1Run(t *testing.T) {
	// The fixture's checkpoint has weight-normalised st-networks: its
	// version 1 configuration names them (a real version 1 run, which
	// predates them, decodes to plain ones; model's TestDecodeConfig).
	run := tinyRun(t)
	v1 := `{"version": 1, "model": "realnvp", "preset": "tiny",
  "realnvp": {"height": 28, "width": 28, "channels": 1, "scales": 2, "blocks": 1, "mid": 4, "constraint": 0.9, "recompute": "off", "activation": "relu",
    "weight_norm": "on", "out_init": "pytorch", "decay": "gains"},
  "data": {"name": "fashionmnist", "embedded": true, "train_limit": 64},
  "train": {"epochs": 1, "max_steps": 3, "batch": 16, "lr": 0.001, "weight_decay": 0, "optimizer": "adam", "clip_norm": 100, "seed": 2, "log_every": 50, "test_limit": 32}}`
	os.WriteFile(filepath.Join(run, "config.json"), []byte(v1), 0o644)
	if _, stderr, err := runCLI(t, "eval", run, "--ood", "mnist", "--limit", "20"); err != nil {
		t.Fatalf("eval of a version 1 run: %v\n%s", err, stderr)
	}
	if _, stderr, err := runCLI(t, "train", "--out", run, "--resume", "--max-steps", "4"); err != nil {
		t.Fatalf("resume of a version 1 run: %v\n%s", err, stderr)
	}
	var cfg struct {
		Version int          `json:"version"`
		Data    runfile.Data `json:"data"`
	}
	b, _ := os.ReadFile(filepath.Join(run, "config.json"))
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Version != 2 || cfg.Data.Subset != runfile.SubsetFirst || cfg.Data.TrainLimit != 64 {
		t.Errorf("resumed version 1 run's config.json: %+v (%v), want version 2 keeping the first 64 images", cfg, err)
	}
}

// TestDemoKeepsRealRuns checks that "flowood demo --out RUN" refuses a
// folder holding a run on full datasets (the demo replaces only its own
// runs), and that a training that fails before writing leaves no folder.
func TestDemoKeepsRealRuns(t *testing.T) {
	run := tinyRun(t)
	cfgPath := filepath.Join(run, "config.json")
	b, _ := os.ReadFile(cfgPath)
	os.WriteFile(cfgPath, []byte(strings.Replace(string(b), `"embedded": true`, `"embedded": false`, 1)), 0o644)
	before := snapshot(t, run)
	_, _, err := runCLI(t, "demo", "--out", run, "--preset", "tiny", "--epochs", "1")
	wantErr(t, "demo into a real run", err, run, "not a demo run")
	unchanged(t, "demo into a real run", run, before)

	nm := filepath.Join(t.TempDir(), "nm")
	_, _, err = runCLI(t, "train", "--data", "notmnist", "--embedded", "--preset", "tiny", "--out", nm)
	wantErr(t, "train on a dataset without a train split", err, "notmnist", "train")
	if _, err := os.Stat(nm); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the failed training left %s behind: %v", nm, err)
	}
}
