package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// TrainOptions says how Train treats the run folder.
type TrainOptions struct {
	// Resume continues the run in the folder from its latest checkpoint;
	// the RunConfig must then be the run's own (ReadRunConfig), changed
	// at most in its length and learning rate.
	Resume bool
	// Force replaces a run already in the folder: its config.json,
	// train-log.csv, checkpoint/ and eval/ are removed once the new
	// run's data have loaded. Without Force (or Resume) Train refuses a
	// folder that holds a run (ErrRunExists).
	Force bool
	// Progress receives progress lines; nil discards.
	Progress io.Writer
}

// ErrRunExists is wrapped by the error Train returns for a folder that
// already holds a run when neither Resume nor Force is set.
var ErrRunExists = errors.New("already holds a run")

// ErrNoRun is wrapped by the error Train returns when asked to resume a
// folder that holds no run.
var ErrNoRun = errors.New("holds no run to resume")

// Train trains the model described by rc into the run folder, writing
// config.json first. It holds the folder's lock (runfile.Lock) while it
// runs: a second training into the same folder fails at once with an
// error wrapping runfile.ErrLocked, and changes nothing there. It trains
// the run alone: the other members of an ensemble (TrainEnsemble) are
// resumed by TrainEnsemble; a run replaced with Force loses them.
func Train(ctx context.Context, rc RunConfig, run string, opt TrainOptions) (train.Result, error) {
	if err := rc.Resolve(); err != nil {
		return train.Result{}, err
	}
	h, err := holdRun(run)
	if err != nil {
		return train.Result{}, err
	}
	defer h.release()
	return trainHeld(ctx, rc, h, opt, nil)
}

// heldRun is a run folder whose lock this process holds.
type heldRun struct {
	dir     string
	created bool // the folder did not exist before holdRun
	wrote   bool // something of a run was written to it
	unlock  func()
}

// holdRun takes the lock of the run folder run, creating it.
func holdRun(run string) (*heldRun, error) {
	_, statErr := os.Stat(run)
	created := errors.Is(statErr, os.ErrNotExist)
	unlock, err := runfile.Lock(run)
	if err != nil {
		return nil, err
	}
	return &heldRun{dir: run, created: created, unlock: unlock}, nil
}

// release releases the lock and, when nothing of a run was written to a
// folder holdRun created, removes it again (no empty folder left behind).
func (h *heldRun) release() {
	h.unlock()
	if h.created && !h.wrote {
		os.Remove(filepath.Join(h.dir, runfile.LockFile))
		os.Remove(h.dir)
	}
}

// trainHeld is Train in a run folder whose lock is held; ens, when not
// nil, is written as the run's ensemble.json after its config.json.
func trainHeld(ctx context.Context, rc RunConfig, h *heldRun, opt TrainOptions, ens *Ensemble) (train.Result, error) {
	run := h.dir
	exists := runfile.Exists(run)
	switch {
	case opt.Resume && !exists:
		return train.Result{}, fmt.Errorf("%s %w", run, ErrNoRun)
	case !opt.Resume && exists && !opt.Force:
		return train.Result{}, fmt.Errorf("%s %w", run, ErrRunExists)
	}
	e, err := rc.Entry()
	if err != nil {
		return train.Result{}, err
	}
	obj, err := buildObjective(rc)
	if err != nil {
		return train.Result{}, err
	}
	first := rc.Data.Subset == runfile.SubsetFirst
	trainSet, err := LoadExamples(rc.Data, "", rc.Data.Train())
	if err != nil {
		return train.Result{}, fmt.Errorf("loading training data: %w", err)
	}
	trainSet, _ = limitExamples(trainSet, rc.Data.TrainLimit, first, rc.Data.SubsetSeed)
	if rc.Data.BackgroundNoise > 0 {
		trainSet = perturbed{trainSet, rc.Data.BackgroundNoise}
	}
	split, err := heldOutSplit(rc.Data.Name)
	if err != nil {
		return train.Result{}, err
	}
	testSet, err := LoadExamples(rc.Data, "", split)
	if err != nil {
		return train.Result{}, fmt.Errorf("loading test data: %w", err)
	}
	testSet, _ = limitExamples(testSet, rc.Train.TestLimit, first, rc.Data.SubsetSeed)
	if exists && opt.Force && !opt.Resume {
		for _, p := range []string{runfile.FileName, "train-log.csv", "checkpoint", "eval", EnsembleFile, EnsembleDir} {
			if err := os.RemoveAll(filepath.Join(run, p)); err != nil {
				return train.Result{}, fmt.Errorf("replacing the run in %s: %w", run, err)
			}
		}
	}
	if note := rc.TrainSplitNote(); note != "" && opt.Progress != nil {
		fmt.Fprintln(opt.Progress, note)
	}
	// On resume too: flags may have changed the length or learning rate.
	if err := rc.Write(run); err != nil {
		return train.Result{}, err
	}
	h.wrote = true
	if ens != nil {
		if err := ens.write(run); err != nil {
			return train.Result{}, fmt.Errorf("writing the ensemble's members: %w", err)
		}
	}
	mc, err := runfile.Encode(rc.Spec, rc.Train)
	if err != nil {
		return train.Result{}, err
	}
	m, err := e.New(rc.ModelConfig, rc.Train.Seed)
	if err != nil {
		return train.Result{}, err
	}
	par, err := DataParallel(rc.Model, m)
	if err != nil {
		return train.Result{}, err
	}
	r := &train.Run{
		Model:       m,
		Parallel:    par,
		Config:      rc.Train,
		Train:       trainSet,
		Test:        testSet,
		Objective:   obj,
		Dir:         run,
		Resume:      opt.Resume,
		Progress:    opt.Progress,
		ModelConfig: compactJSON(mc),
	}
	return r.Execute(ctx)
}

// compactJSON returns b without insignificant white space.
func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// heldOutSplit returns the split that a model trained on the "train"
// split of data set name is tested on: "test", else "val". It never
// falls back to "train", which would score the model on its own training
// data; loading a split that is not to be had here fails with an error
// that says where it was looked for.
func heldOutSplit(name string) (string, error) {
	splits, err := splitsOf(name)
	if err != nil {
		return "", err
	}
	for _, want := range []string{"test", "val"} {
		if slices.Contains(splits, want) {
			return want, nil
		}
	}
	return "", fmt.Errorf("dataset %s has no test or val split to evaluate on", name)
}

// oodSplit returns the split of data set name to score as out-of-
// distribution data: "test", else "val", unless neither can be had here
// (not present locally and not downloadable; a split whose files are
// present but fail their checks counts as present, so the error shows);
// then the first split that can, since a model trained on another data
// set never saw any split of this one. (CelebA's test split exists only
// in its canonical full-size form; a mirror that holds just the 10k
// training subset is scored on that.)
func oodSplit(name string, embedded bool) string {
	splits, err := splitsOf(name)
	if err != nil || len(splits) == 0 {
		return "test"
	}
	if data.IsTableFile(name) {
		embedded = true // a file given by path: no sources to ask
	}
	var order []string
	for _, want := range []string{"test", "val"} {
		if slices.Contains(splits, want) {
			order = append(order, want)
		}
	}
	for _, s := range splits {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	if embedded {
		return order[0]
	}
	for _, s := range order {
		st := data.Status(name, s, data.Options{}, false)
		if st.Where != data.WhereNotAvailable || st.Err != nil {
			return s
		}
	}
	return order[0]
}

// DataParallel returns a train.Parallel with a replica of m, a model of
// the named registry entry, per core, or nil where data-parallel training
// does not apply or does not pay (on one core, and where the model's
// entry says so: see model.Entry.Replicas).
func DataParallel(modelName string, m model.Model) (*train.Parallel, error) {
	k := kernels.Workers()
	if k < 2 {
		return nil, nil
	}
	e, err := model.Lookup(modelName)
	if err != nil {
		return nil, err
	}
	g := tensor.NewGroup(k)
	reps, err := e.Replicas(m, g)
	if err != nil || reps == nil {
		return nil, err
	}
	return train.NewParallel(m, reps, g)
}
