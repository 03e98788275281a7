package experiment

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/train/checkpoint"
)

// tinyConfig is the configuration of tinyRun.
func tinyConfig(t *testing.T, seed uint64) RunConfig {
	t.Helper()
	return tinyModelConfig(t, "realnvp", seed)
}

func readWeights(t *testing.T, run string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(run, "checkpoint", "latest", checkpoint.ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrainEnsembleWAIC trains an ensemble of three tiny members and
// checks the layout (members are run folders with seeds 5, 6, 7 and
// different weights), then that flowood eval's waic column, with no
// members named, equals mean - variance of the members' log-likelihoods
// computed here by loading each member folder and scoring the same
// examples.
func TestTrainEnsembleWAIC(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	rc := tinyConfig(t, 5)
	var progress bytes.Buffer
	res, err := TrainEnsemble(context.Background(), rc, run, 3, TrainOptions{Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results, want 3", len(res))
	}
	for _, w := range []string{"member 2/3: ", "member 3 of 3 (seed 7)", "ETA of the ensemble"} {
		if !strings.Contains(progress.String(), w) {
			t.Errorf("progress lacks %q:\n%s", w, progress.String())
		}
	}
	members := []string{run, filepath.Join(run, "ensemble", "1"), filepath.Join(run, "ensemble", "2")}
	var weights [][]byte
	for i, m := range members {
		mrc, err := ReadRunConfig(m)
		if err != nil {
			t.Fatal(err)
		}
		if mrc.Train.Seed != 5+uint64(i) {
			t.Errorf("member %d: seed %d, want %d", i, mrc.Train.Seed, 5+i)
		}
		w := readWeights(t, m)
		for j, v := range weights {
			if bytes.Equal(v, w) {
				t.Errorf("members %d and %d have the same weights", j, i)
			}
		}
		weights = append(weights, w)
	}
	e, err := ReadEnsemble(run)
	if err != nil || e == nil || e.K != 3 {
		t.Fatalf("ReadEnsemble: %+v, %v", e, err)
	}

	const n = 20
	met, err := Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, Limit: n, Scores: []string{"waic"}, Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(met.Ensemble, ",") != strings.Join(members[1:], ",") {
		t.Errorf("metrics ensemble %v, want %v", met.Ensemble, members[1:])
	}
	rows := readScoresCSV(t, run)
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if _, ok := col["waic"]; !ok {
		t.Fatalf("scores.csv has no waic column: %v", rows[0])
	}
	type key struct{ set, split string }
	idx := map[key][]int{}
	got := map[key][]float64{}
	for _, r := range rows[1:] {
		k := key{r[0], r[1]}
		i, _ := strconv.Atoi(r[2])
		v, err := strconv.ParseFloat(r[col["waic"]], 64)
		if err != nil {
			t.Fatal(err)
		}
		idx[k] = append(idx[k], i)
		got[k] = append(got[k], v)
	}
	if len(got) != 3 {
		t.Fatalf("scores.csv sets %v, want train, test and mnist", idx)
	}
	for k, ix := range idx {
		x, err := LoadExamples(rc.Data, k.set, k.split)
		if err != nil {
			t.Fatal(err)
		}
		x = subset(x, ix)
		var lls [][]float64
		for _, m := range members {
			mrc, err := ReadRunConfig(m)
			if err != nil {
				t.Fatal(err)
			}
			model, err := LoadModel(mrc, m, "")
			if err != nil {
				t.Fatal(err)
			}
			// the evaluation's dequantisation: each image's own noise (pixels.ImageNoise)
			ll, err := (&ood.LogLikelihood{Model: model, Seed: rc.Train.Seed + 1, ImageNoise: true}).Score(context.Background(), x, 0)
			if err != nil {
				t.Fatal(err)
			}
			lls = append(lls, ll)
		}
		for i := range ix {
			var mean, v float64
			for _, l := range lls {
				mean += l[i]
			}
			mean /= 3
			for _, l := range lls {
				v += (l[i] - mean) * (l[i] - mean)
			}
			want := mean - v/3
			if math.Abs(got[k][i]-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Errorf("%s %s %d: waic %v, want mean - variance of the members' log p = %v", k.set, k.split, ix[i], got[k][i], want)
			}
		}
	}

	// a member missing (an interrupted ensemble): eval says how to finish it
	if err := os.Rename(members[2], members[2]+".away"); err != nil {
		t.Fatal(err)
	}
	_, err = Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, Limit: 8, Scores: []string{"waic"}, Bootstrap: -1})
	if err == nil || !strings.Contains(err.Error(), "flowood train --out "+run+" --resume") {
		t.Errorf("waic with a member missing: error %v", err)
	}
	if err := os.Rename(members[2]+".away", members[2]); err != nil {
		t.Fatal(err)
	}

	// an explicit --ensemble wins over ensemble.json
	met, err = Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, Limit: 8, Scores: []string{"waic"},
		Ensemble: members[2:], Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(met.Ensemble, ",") != members[2] {
		t.Errorf("with --ensemble %s: metrics ensemble %v", members[2], met.Ensemble)
	}
}

// TestTrainEnsembleResume checks resuming an ensemble: finished members
// are not retrained, a member not yet started is trained, asking for
// fewer members is an error, asking for more adds them, and k < 1 is an
// error.
func TestTrainEnsembleResume(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rc := tinyConfig(t, 2)
	if _, err := TrainEnsemble(ctx, rc, filepath.Join(root, "x"), 0, TrainOptions{}); err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Errorf("k = 0: error %v", err)
	}
	if _, err := TrainEnsemble(ctx, rc, filepath.Join(root, "x"), -2, TrainOptions{Resume: true}); err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Errorf("k = -2: error %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused ensemble left its folder: %v", err)
	}

	// a run trained alone, resumed with k = 2: member 0 is kept, member 1 added
	run := filepath.Join(root, "run")
	if _, err := Train(ctx, rc, run, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	w0 := readWeights(t, run)
	res, err := TrainEnsemble(ctx, rc, run, 2, TrainOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].AlreadyFinished || res[1].AlreadyFinished || res[1].Steps != 3 {
		t.Fatalf("growing to 2 members: results %+v", res)
	}
	if !bytes.Equal(readWeights(t, run), w0) {
		t.Errorf("member 0 was retrained")
	}
	m1 := filepath.Join(run, "ensemble", "1")
	w1 := readWeights(t, m1)

	// fewer members than the run has: refused, nothing changed
	if _, err := TrainEnsemble(ctx, rc, run, 1, TrainOptions{Resume: true}); !errors.Is(err, ErrEnsembleSize) {
		t.Errorf("resume with 1 member of 2: error %v, want ErrEnsembleSize", err)
	}
	// a third member interrupted before it started (its folder absent):
	// resume (k = 0, the run's own size after growing to 3) trains it alone
	if _, err := TrainEnsemble(ctx, rc, run, 3, TrainOptions{Resume: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(run, "ensemble", "2")); err != nil {
		t.Fatal(err)
	}
	res, err = TrainEnsemble(ctx, rc, run, 0, TrainOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || !res[0].AlreadyFinished || !res[1].AlreadyFinished || res[2].AlreadyFinished {
		t.Errorf("resume: results %+v, want members 0 and 1 finished and member 2 trained", res)
	}
	if !bytes.Equal(readWeights(t, m1), w1) {
		t.Errorf("member 1 was retrained")
	}

	// a member folder holding another seed's run is refused
	other := tinyConfig(t, 9)
	m2 := filepath.Join(run, "ensemble", "2")
	if _, err := Train(ctx, other, m2, TrainOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := TrainEnsemble(ctx, rc, run, 0, TrainOptions{Resume: true}); err == nil || !strings.Contains(err.Error(), "seed 9 here, 4 asked") {
		t.Errorf("resume with a foreign member: error %v", err)
	}

	// --force without an ensemble replaces the run and drops its members
	if _, err := TrainEnsemble(ctx, rc, run, 1, TrainOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{EnsembleFile, EnsembleDir} {
		if _, err := os.Stat(filepath.Join(run, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("--force left %s: %v", p, err)
		}
	}
}

// TestTrainEnsembleLocked checks the locks: a member folder held by
// another training stops the ensemble there with runfile.ErrLocked
// (member 0 trained), the run folder's lock is held while members train,
// and a resume once the member is free trains only that member.
func TestTrainEnsembleLocked(t *testing.T) {
	ctx := context.Background()
	run := filepath.Join(t.TempDir(), "run")
	rc := tinyConfig(t, 6)
	unlock, err := runfile.Lock(filepath.Join(run, "ensemble", "1"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := TrainEnsemble(ctx, rc, run, 2, TrainOptions{})
	if !errors.Is(err, runfile.ErrLocked) || len(res) != 1 {
		t.Fatalf("member folder locked: results %+v, error %v", res, err)
	}
	unlock()
	unlockRun, err := runfile.Lock(run)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TrainEnsemble(ctx, rc, run, 0, TrainOptions{Resume: true}); !errors.Is(err, runfile.ErrLocked) {
		t.Errorf("run folder locked: error %v", err)
	}
	unlockRun()
	res, err = TrainEnsemble(ctx, rc, run, 0, TrainOptions{Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].AlreadyFinished || res[1].AlreadyFinished {
		t.Errorf("resume after the lock: results %+v, want member 0 finished and member 1 trained", res)
	}
}

// TestReproductionReusesEnsemble checks reproduce's reuse rule with
// ensembles: a recipe that asks for one run reuses, without error and
// without retraining, a run of the same configuration that another recipe
// trained as an ensemble; one asking for more members adds them.
func TestReproductionReusesEnsemble(t *testing.T) {
	r := &Reproduction{Ctx: context.Background(), Preset: "tiny", Out: t.TempDir(), Progress: io.Discard, sources: map[string]bool{}}
	rc := tinyConfig(t, 0)
	run, err := r.TrainEnsemble("x", rc, 2)
	if err != nil {
		t.Fatal(err)
	}
	w := readWeights(t, run)
	if _, err := r.Train("x", rc); err != nil {
		t.Fatalf("reusing an ensemble's run for one run: %v", err)
	}
	if e, err := ReadEnsemble(run); err != nil || e == nil || e.K != 2 {
		t.Errorf("ensemble after reuse: %+v, %v", e, err)
	}
	if !bytes.Equal(readWeights(t, run), w) {
		t.Errorf("reuse retrained member 0")
	}
	if _, err := r.TrainEnsemble("x", rc, 3); err != nil {
		t.Fatal(err)
	}
	if e, _ := ReadEnsemble(run); e == nil || e.K != 3 {
		t.Errorf("asking for 3 members: ensemble %+v", e)
	}
	if !strings.Contains(strings.Join(r.commands, "\n"), "--ensemble 3") {
		t.Errorf("commands lack --ensemble 3: %v", r.commands)
	}
}
