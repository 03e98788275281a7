package detector_test

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/detector"
	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/runfile"
)

// tinyRun trains a tiny RealNVP on the embedded FashionMNIST for a few
// steps into dir.
func tinyRun(t *testing.T, dir string, seed uint64) {
	t.Helper()
	rc, err := experiment.NewRunConfig("realnvp", "tiny", "fashionmnist")
	if err != nil {
		t.Fatal(err)
	}
	rc.Data.Embedded = true
	rc.Train.MaxSteps, rc.Train.Seed, rc.Train.TestLimit = 3, seed, 32
	if err := rc.Resolve(); err != nil {
		t.Fatal(err)
	}
	if _, err := experiment.Train(context.Background(), rc, dir, experiment.TrainOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestScoresMatchEval evaluates a tiny run with every score (other tiny
// runs standing in for the background, general-domain and ensemble
// runs), then scores the very images of scores.csv with the detector
// loaded from the run folder alone: every score has the same bits as
// eval's, and each OOD decision is the score against thresholds.json's
// threshold.
func TestScoresMatchEval(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three tiny runs")
	}
	root := t.TempDir()
	run, other, third := filepath.Join(root, "run"), filepath.Join(root, "other"), filepath.Join(root, "third")
	tinyRun(t, run, 1)
	tinyRun(t, other, 2)
	tinyRun(t, third, 3)
	// 24 per set in batches of 20: the tail of 4 joins the first batch
	// (ood.LogLikelihood), which the model scores in the detector's
	// padded chunks of 8.
	_, err := experiment.Evaluate(context.Background(), run, experiment.EvalOptions{OOD: []string{"mnist"}, Limit: 24, Batch: 20,
		Scores: []string{"ic", "ic_lzma", "typicality", "lr", "waic", "general", "dose"}, Background: other,
		General: third, Ensemble: []string{other, third}, Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	det, err := detector.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(det.Scores(), ","); got != strings.Join(detector.ScoreNames, ",") {
		t.Fatalf("detector computes %s, want every score eval calibrated", got)
	}
	cal, err := runfile.ReadCalibration(run)
	if err != nil {
		t.Fatal(err)
	}
	thr := det.Thresholds()
	for _, sc := range cal.Scores {
		if thr[sc.Name] != float64(sc.Threshold) {
			t.Errorf("%s: detector threshold %v, thresholds.json %v", sc.Name, thr[sc.Name], float64(sc.Threshold))
		}
	}

	f, err := os.Open(filepath.Join(run, "eval", "scores.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	col["loglik"] = col["log_likelihood"]
	sets := map[string]*data.Images{}
	var imgs []image.Image
	for _, r := range rows[1:] {
		im := sets[r[0]+" "+r[1]]
		if im == nil {
			if im, err = data.Load(r[0], r[1], data.Options{Embedded: true}); err != nil {
				t.Fatal(err)
			}
			sets[r[0]+" "+r[1]] = im
		}
		i, _ := strconv.Atoi(r[2])
		imgs = append(imgs, &image.Gray{Pix: im.Pix[i*784 : (i+1)*784], Stride: 28, Rect: image.Rect(0, 0, 28, 28)})
	}
	if len(imgs) != 72 {
		t.Fatalf("scores.csv has %d rows, want 72 (train, test, mnist)", len(imgs))
	}
	res, err := det.Score(context.Background(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	mismatches := 0
	for k, r := range rows[1:] {
		for _, name := range detector.ScoreNames {
			want, err := strconv.ParseFloat(r[col[name]], 64)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := res[k].Scores[name]
			if !ok || math.Float64bits(got) != math.Float64bits(want) {
				if mismatches++; mismatches <= 10 {
					t.Errorf("%s %s %s: %s %v, scores.csv %v", r[0], r[1], r[2], name, got, want)
				}
			}
			if ood, ok := res[k].OODBy[name]; !ok || ood != (want < thr[name]) {
				t.Errorf("%s %s %s: OOD by %s %v (%v), score %v threshold %v", r[0], r[1], r[2], name, ood, ok, want, thr[name])
			}
		}
		if res[k].OOD != res[k].OODBy["loglik"] || res[k].Complexity != res[k].Scores["ic"] {
			t.Errorf("row %d: OOD %v by loglik %v; complexity %v ic %v", k, res[k].OOD, res[k].OODBy["loglik"], res[k].Complexity, res[k].Scores["ic"])
		}
	}

	// From 4 goroutines at once, in batches of 1, 5, 9 and 13: the same
	// bits (with -race: no shared state written, reference models and
	// DoSE included).
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := 1 + 4*g
			for lo := 0; lo < 26; lo += step {
				got, err := det.Score(context.Background(), imgs[lo:min(lo+step, 26)])
				if err != nil {
					errs[g] = err
					return
				}
				for i, r := range got {
					for _, name := range detector.ScoreNames {
						if math.Float64bits(r.Scores[name]) != math.Float64bits(res[lo+i].Scores[name]) {
							errs[g] = fmt.Errorf("image %d in a batch of %d: %s %v, %v in one call", lo+i, step, name, r.Scores[name], res[lo+i].Scores[name])
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	for g, err := range errs {
		if err != nil {
			t.Errorf("goroutine %d: %v", g, err)
		}
	}

	// Another primary score decides OOD.
	byIC, err := detector.LoadWith(run, detector.Options{Scores: []string{"ic"}, Primary: "ic"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := byIC.Score(context.Background(), imgs[:10])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range r2 {
		if len(r.Scores) != 2 || r.OOD != (r.Scores["ic"] < thr["ic"]) {
			t.Errorf("primary ic, image %d: %+v", i, r)
		}
	}

	// The runs moved together: references are found relative to the run.
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(root, moved); err != nil {
		t.Fatal(err)
	}
	if _, err := detector.Load(filepath.Join(moved, "run")); err != nil {
		t.Errorf("after moving every run: %v", err)
	}
	// A reference gone from both places: a clear error, and the scores
	// that do not need it still load.
	if err := os.Rename(filepath.Join(moved, "other"), filepath.Join(moved, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	_, err = detector.Load(filepath.Join(moved, "run"))
	if err == nil || !strings.Contains(err.Error(), "score lr") || !strings.Contains(err.Error(), "background run") ||
		!strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "thresholds.json") {
		t.Errorf("missing background run: %v", err)
	}
	if _, err := detector.LoadWith(filepath.Join(moved, "run"), detector.Options{Scores: []string{"ic", "dose", "general"}}); err != nil {
		t.Errorf("scores without the missing run: %v", err)
	}
	// A reference with other weights.
	os.Rename(filepath.Join(moved, "elsewhere"), filepath.Join(moved, "other"))
	w := filepath.Join(moved, "third", "checkpoint", cal.Scores[6].References[0].Checkpoint, "model.safetensors")
	b, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	os.WriteFile(w, b, 0o644)
	if _, err := detector.LoadWith(filepath.Join(moved, "run"), detector.Options{Scores: []string{"general"}}); err == nil ||
		!strings.Contains(err.Error(), "other weights") {
		t.Errorf("changed general run: %v", err)
	}
	// The run's own weights changed since eval: no threshold applies.
	w = filepath.Join(moved, "run", "checkpoint", cal.Checkpoint, "model.safetensors")
	b, _ = os.ReadFile(w)
	b[len(b)-1] ^= 1
	os.WriteFile(w, b, 0o644)
	stale, err := detector.Load(filepath.Join(moved, "run"))
	if err != nil || stale.Calibrated() || strings.Join(stale.Scores(), ",") != "loglik" {
		t.Errorf("stale calibration: calibrated %v scores %v error %v, want uncalibrated loglik", stale != nil && stale.Calibrated(), stale, err)
	}
	if _, err := detector.LoadWith(filepath.Join(moved, "run"), detector.Options{Scores: []string{"dose"}}); !errors.Is(err, detector.ErrNotCalibrated) ||
		!strings.Contains(err.Error(), "changed since flowood eval") {
		t.Errorf("dose of stale calibration: %v", err)
	}
}
