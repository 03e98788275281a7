package train_test

import (
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
	"github.com/flowood/flowood/train/checkpoint"
)

// hookModel is a model that calls hook before each LogProb, with whether
// it is in training mode.
type hookModel struct {
	*realnvp.Model
	training bool
	hook     func(training bool)
}

func (h *hookModel) SetTraining(b bool) { h.training = b; h.Model.SetTraining(b) }

func (h *hookModel) LogProb(x *tensor.Tensor) *tensor.Tensor {
	h.hook(h.training)
	return h.Model.LogProb(x)
}

// sameWeights reports the first tensor where a and b differ in any bit.
func sameWeights(t *testing.T, a, b nn.Module) {
	t.Helper()
	ta, tb := nn.Tensors(a), nn.Tensors(b)
	for i := range ta {
		for j := range ta[i].T.Data {
			if math.Float32bits(ta[i].T.Data[j]) != math.Float32bits(tb[i].T.Data[j]) {
				t.Fatalf("%s[%d]: %v vs %v", ta[i].Name, j, ta[i].T.Data[j], tb[i].T.Data[j])
			}
		}
	}
}

// logRows reads a train-log.csv without its img/s column.
func logRows(t *testing.T, dir string) [][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "train-log.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		rows[i] = rows[i][:len(rows[i])-1]
	}
	return rows
}

// TestInterruptedEvaluation cancels a run during the evaluation after its
// first epoch: it saves the latest checkpoint with the evaluation pending
// and returns context.Canceled; resumed, it evaluates first, then goes on.
// Weights and the log (but its img/s column) must be those of an
// uninterrupted run, the best checkpoint too.
func TestInterruptedEvaluation(t *testing.T) {
	tr, te := fashion(t)
	cfg := train.Config{Epochs: 2, Batch: 16, LR: 1e-3, Seed: 3, LogEvery: 1000, CheckpointEvery: train.Off}
	straightDir := t.TempDir()
	straight := tinyModel()
	if _, err := (&train.Run{Model: straight, Config: cfg, Train: tr, Test: te, Dir: straightDir}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := &hookModel{Model: tinyModel(), hook: func(training bool) {
		if !training {
			cancel()
		}
	}}
	_, err := (&train.Run{Model: first, Config: cfg, Train: tr, Test: te, Dir: dir}).Execute(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during the evaluation: %v", err)
	}
	st, err := checkpoint.Load(filepath.Join(dir, "checkpoint", "latest"), tinyModel())
	if err != nil {
		t.Fatal(err)
	}
	if !st.EvalPending || st.Step != 6 || st.Epoch != 1 || st.BatchInEpoch != 0 || st.EpochSteps != 6 {
		t.Errorf("checkpoint saved during the evaluation: %+v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint", "best")); err == nil {
		t.Error("a best checkpoint was saved before the evaluation")
	}

	resumed := tinyModel()
	res, err := (&train.Run{Model: resumed, Config: cfg, Train: tr, Test: te, Dir: dir, Resume: true}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 12 || math.IsNaN(res.TestBPD) {
		t.Errorf("resumed run: %+v", res)
	}
	sameWeights(t, straight, resumed)
	if a, b := logRows(t, straightDir), logRows(t, dir); !slices.EqualFunc(a, b, slices.Equal) {
		t.Errorf("train-log.csv\n%v\nuninterrupted\n%v", b, a)
	}
	best := tinyModel()
	if _, err := checkpoint.Load(filepath.Join(dir, "checkpoint", "best"), best); err != nil {
		t.Fatal(err)
	}
	bestStraight := tinyModel()
	if _, err := checkpoint.Load(filepath.Join(straightDir, "checkpoint", "best"), bestStraight); err != nil {
		t.Fatal(err)
	}
	sameWeights(t, bestStraight, best)
}

// TestPeriodicCheckpoints saves a checkpoint before every step
// (CheckpointEvery 1ns), keeps a copy of the run folder as it was at a
// step mid-epoch (as a run killed then would leave it) and resumes from
// that copy: weights and the epoch rows of the log must be those of an
// uninterrupted run.
func TestPeriodicCheckpoints(t *testing.T) {
	tr, te := fashion(t)
	cfg := train.Config{Epochs: 2, Batch: 16, LR: 1e-3, Seed: 4, LogEvery: 1000, CheckpointEvery: 1}
	dir, snap := t.TempDir(), t.TempDir()
	calls := 0
	m := &hookModel{Model: tinyModel(), hook: func(training bool) {
		if !training {
			return
		}
		calls++
		if calls == 9 { // before step 9: the checkpoint at step 8 (epoch 1, batch 2) is saved
			if err := os.CopyFS(snap, os.DirFS(dir)); err != nil {
				t.Error(err)
			}
		}
	}}
	if _, err := (&train.Run{Model: m, Config: cfg, Train: tr, Test: te, Dir: dir}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.Load(filepath.Join(snap, "checkpoint", "latest"), tinyModel())
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 8 || st.Epoch != 1 || st.BatchInEpoch != 2 || st.EpochSteps != 2 || st.EvalPending {
		t.Fatalf("snapshot at %+v, want step 8 (epoch 1, batch 2)", st)
	}
	resumed := tinyModel()
	res, err := (&train.Run{Model: resumed, Config: cfg, Train: tr, Test: te, Dir: snap, Resume: true}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 12 {
		t.Errorf("resumed run ended at step %d", res.Steps)
	}
	sameWeights(t, m, resumed)
	if a, b := logRows(t, dir), logRows(t, snap); !slices.EqualFunc(a, b, slices.Equal) {
		t.Errorf("train-log.csv\n%v\nuninterrupted\n%v", b, a)
	}
}

// TestResumeFinished resumes a run that has done its epochs: Execute takes
// no step, reports the checkpoint's results and changes no file.
func TestResumeFinished(t *testing.T) {
	tr, te := fashion(t)
	cfg := train.Config{Epochs: 1, Batch: 16, MaxSteps: 3, Seed: 1}
	dir := t.TempDir()
	first, err := (&train.Run{Model: tinyModel(), Config: cfg, Train: tr, Test: te, Dir: dir}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range []string{"train-log.csv", "checkpoint/latest/state.json", "checkpoint/latest/model.safetensors"} {
		files[f], err = os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
	}
	res, err := (&train.Run{Model: tinyModel(), Config: cfg, Train: tr, Test: te, Dir: dir, Resume: true}).Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !res.AlreadyFinished || res.Steps != 3 || res.TestBPD != first.TestBPD || res.BestTestBPD != first.BestTestBPD || math.IsNaN(res.TestBPD) {
		t.Errorf("resumed finished run: %+v; first run %+v", res, first)
	}
	for f, b := range files {
		if now, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(now) != string(b) {
			t.Errorf("%s changed (%v)", f, err)
		}
	}
	// asked for more steps, it trains them
	cfg.MaxSteps = 5
	res, err = (&train.Run{Model: tinyModel(), Config: cfg, Train: tr, Test: te, Dir: dir, Resume: true}).Execute(context.Background())
	if err != nil || res.AlreadyFinished || res.Steps != 5 {
		t.Errorf("resumed with more steps: %+v, %v", res, err)
	}
}
