package train

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flowood/flowood/internal/atomicfile"
	"github.com/flowood/flowood/internal/progress"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// Model is what the loop trains: a density with named tensors
// (model.Model is one).
type Model interface {
	ood.Model
	nn.Module
}

// Config holds the training hyperparameters. The zero value of each field
// is the default given in its comment.
type Config struct {
	// Epochs is the number of passes over the training set (default 1).
	Epochs int `json:"epochs"`
	// MaxSteps stops training after this many steps in total (0: no limit).
	MaxSteps int `json:"max_steps"`
	// Batch is the batch size (default 64).
	Batch int `json:"batch"`
	// LR is the learning rate (default 1e-3).
	LR float64 `json:"lr"`
	// Warmup is the number of steps of linear learning-rate warm-up
	// from 0 to LR (LRAt); 0 is none.
	Warmup int `json:"warmup,omitempty"`
	// WeightDecay is the optimiser's weight decay (default 0).
	WeightDecay float64 `json:"weight_decay"`
	// Optimizer is adam, adamw or rmsprop (default adam).
	Optimizer string `json:"optimizer"`
	// ClipNorm clips the gradient norm (default 100; negative: off). A
	// non-finite gradient norm stops training with ErrNonFinite.
	ClipNorm float64 `json:"clip_norm"`
	// Loss is the objective whose gradient the optimiser follows, and so
	// the unit of ClipNorm, WeightDecay's balance against the data and the
	// logged grad_norm: "nats" (the default, as the reference code: the
	// mean negative log-likelihood per example, in nats) or "bpd" (the
	// mean bits per dimension, 1/(D ln 2) of it). Logged losses are bits
	// per dimension either way.
	Loss string `json:"loss"`
	// ClipPer is "group" (the default, as the reference code, which clips
	// each of its parameter groups on its own: the parameters with weight
	// decay, per the model's Decayer, and the others) or "all" (one norm
	// over every parameter).
	ClipPer string `json:"clip_per"`
	// Seed seeds the data order and dequantisation noise (default 0).
	Seed uint64 `json:"seed"`
	// LogEvery writes a train-log row every this many steps (default 50).
	LogEvery int `json:"log_every"`
	// TestLimit caps the test images evaluated after each epoch (0: all).
	TestLimit int `json:"test_limit"`
	// CheckpointEvery saves the latest checkpoint between steps whenever
	// this long has passed since the last save (default 10m; Off: only at
	// epoch ends and when interrupted).
	CheckpointEvery Interval `json:"checkpoint_every"`
}

// legacyTrain holds the values that the fields added with the reference's
// objective take in configurations written before them.
var legacyTrain = Config{Loss: "bpd", ClipPer: "all"}

// UnmarshalJSON decodes c, giving loss and clip_per their values from
// before they existed ("bpd", "all") when the JSON lacks them, so that an
// older run resumes as it trained. A Config built in Go, or decoded from
// JSON with the fields, gets the defaults of WithDefaults instead.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config // without this method
	v := plain(legacyTrain)
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = Config(v)
	return nil
}

// Decayer is implemented by models that apply weight decay to some of
// their parameters only.
type Decayer interface {
	// Decays reports whether weight decay applies to the parameter of
	// the given name (as nn.Tensors names it).
	Decays(name string) bool
}

// decayMask returns whether weight decay applies to each parameter of m,
// in nn.Params order, or nil (all) when m is no Decayer.
func decayMask(m nn.Module) []bool {
	d, ok := m.(Decayer)
	if !ok {
		return nil
	}
	var mask []bool
	for _, t := range nn.Tensors(m) {
		if t.Trainable {
			mask = append(mask, d.Decays(t.Name))
		}
	}
	return mask
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.Epochs == 0 {
		c.Epochs = 1
	}
	if c.Batch == 0 {
		c.Batch = 64
	}
	if c.LR == 0 {
		c.LR = 1e-3
	}
	if c.Optimizer == "" {
		c.Optimizer = "adam"
	}
	if c.ClipNorm == 0 {
		c.ClipNorm = 100
	}
	if c.Loss == "" {
		c.Loss = "nats"
	}
	if c.ClipPer == "" {
		c.ClipPer = "group"
	}
	if c.LogEvery == 0 {
		c.LogEvery = 50
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	return c
}

// Validate reports invalid hyperparameters.
func (c Config) Validate() error {
	switch {
	case c.Epochs < 0:
		return fmt.Errorf("epochs %d must be positive", c.Epochs)
	case c.Batch < 2:
		return fmt.Errorf("batch %d must be at least 2 (batch norm needs two examples)", c.Batch)
	case c.LR <= 0 || math.IsNaN(c.LR) || math.IsInf(c.LR, 0):
		return fmt.Errorf("learning rate %v must be positive and finite", c.LR)
	case c.WeightDecay < 0:
		return fmt.Errorf("weight decay %v must not be negative", c.WeightDecay)
	case c.MaxSteps < 0:
		return fmt.Errorf("max steps %d must not be negative", c.MaxSteps)
	case c.Warmup < 0:
		return fmt.Errorf("warmup %d must not be negative", c.Warmup)
	case math.IsNaN(c.ClipNorm) || math.IsInf(c.ClipNorm, 0) || math.IsNaN(c.WeightDecay) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("clip norm %v and weight decay %v must be finite", c.ClipNorm, c.WeightDecay)
	case c.TestLimit < 0:
		return fmt.Errorf("test limit %d must not be negative", c.TestLimit)
	case c.Loss != "" && c.Loss != "nats" && c.Loss != "bpd":
		return fmt.Errorf("loss %q (want nats or bpd)", c.Loss)
	case c.ClipPer != "" && c.ClipPer != "group" && c.ClipPer != "all":
		return fmt.Errorf("clip_per %q (want group or all)", c.ClipPer)
	}
	_, err := NewOptimizer(c.Optimizer, 0)
	return err
}

// ErrNonFinite is returned when the loss becomes NaN or infinite; the last
// good checkpoint is kept.
var ErrNonFinite = errors.New("loss is not finite")

// Run is one training run writing into a run folder.
type Run struct {
	Model  Model
	Config Config
	// Train and Test are the training and test sets, images (dequantised
	// by Read with the run's noise) or tables; Test may be nil.
	Train datakind.Examples
	Test  datakind.Examples
	// Objective is what a step minimises; nil is MaxLikelihood.
	Objective Objective
	// Dir is the run folder: train-log.csv and checkpoint/{latest,best}.
	Dir string
	// Resume continues from Dir/checkpoint/latest.
	Resume bool
	// Progress receives the progress line (stderr); nil discards.
	Progress io.Writer
	// ModelConfig is stored in checkpoints so a run can be reloaded.
	ModelConfig json.RawMessage
	// Parallel, when not nil, computes the gradients of Model (data-parallel
	// over replicas of it); otherwise one pass over the batch does.
	Parallel *Parallel
}

// Result summarises a finished run.
type Result struct {
	Steps       int
	TestBPD     float64 // after the last epoch
	BestTestBPD float64
	ImgPerSec   float64
	Duration    time.Duration
	// AlreadyFinished reports a resumed run that had already done its
	// epochs and steps: Execute took no step (Steps, TestBPD and
	// BestTestBPD are the checkpoint's).
	AlreadyFinished bool
	// Epochs is the number of epochs completed.
	Epochs int
}

// Execute trains until the configured epochs or steps are done or ctx is
// cancelled (then it saves a checkpoint and returns ctx's error). Besides
// the checkpoints of epoch ends it saves the latest checkpoint every
// Config.CheckpointEvery, between steps; a run resumed from any of them
// continues exactly as if it had not stopped (the same weights, bit for
// bit): the checkpoint holds the position in the epoch (whose data order
// is drawn from the seed and the epoch), the dequantisation noise
// generator and the optimiser's moments. A resumed run that has already
// finished returns at once with Result.AlreadyFinished set.
func (r *Run) Execute(ctx context.Context) (Result, error) {
	cfg := r.Config.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	m := r.Model
	params := nn.Params(m)
	named := trainable(m)
	opt, _ := NewOptimizer(cfg.Optimizer, cfg.WeightDecay)
	decay := decayMask(m)
	SetDecay(opt, decay)
	clipGroups := decay
	if cfg.ClipPer == "all" {
		clipGroups = nil
	}
	rng := tensor.NewRNG(cfg.Seed ^ 0x5eed)
	state := checkpoint.State{BestTestBPD: math.Inf(1), TestBPD: math.NaN()}
	ckDir := filepath.Join(r.Dir, "checkpoint")
	if r.Resume {
		var err error
		state, err = resumeFrom(filepath.Join(ckDir, "latest"), m, opt, rng)
		if err != nil {
			return Result{}, fmt.Errorf("resuming: %w", err)
		}
	}
	obj := r.Objective
	if obj == nil {
		obj = MaxLikelihood{}
	}
	shape := datakind.ShapeOf(r.Train.Shape())
	if err := shape.Validate(); err != nil {
		return Result{}, fmt.Errorf("training set %s: %w", r.Train.Label(), err)
	}
	unit := "bpd" // of the progress lines
	if shape.Kind == datakind.Tabular {
		unit = "nats/dim"
	}
	neg, rows, err := r.negatives(obj, shape, cfg, filepath.Join(ckDir, "latest"), state)
	if err != nil {
		return Result{}, err
	}
	stepsPerEpoch := r.Train.Len() / cfg.Batch
	if stepsPerEpoch == 0 {
		return Result{}, fmt.Errorf("training set of %d examples is smaller than one batch of %d", r.Train.Len(), cfg.Batch)
	}
	if cfg.Epochs > math.MaxInt/stepsPerEpoch {
		return Result{}, fmt.Errorf("%d epochs of %d steps: too many steps", cfg.Epochs, stepsPerEpoch)
	}
	total := cfg.Epochs * stepsPerEpoch
	if cfg.MaxSteps > 0 && cfg.MaxSteps < total {
		total = cfg.MaxSteps
	}
	res := Result{Steps: state.Step, Epochs: state.Epoch, BestTestBPD: state.BestTestBPD, TestBPD: state.TestBPD}
	if r.Resume && !state.EvalPending && (state.Epoch >= cfg.Epochs || state.Step >= total) {
		m.SetTraining(false)
		res.AlreadyFinished = true
		return res, nil
	}
	logPath := filepath.Join(r.Dir, "train-log.csv")
	logFile, err := openLog(logPath, r.Resume, state.Step, shape)
	if err != nil {
		return Result{}, err
	}
	defer logFile.Close()
	w := csv.NewWriter(logFile)

	bar := progress.New(r.Progress, "train", total, "img")
	bar.Start = state.Step
	start := time.Now()
	imgs := 0
	save := func(name string) error {
		if err := finiteParams(named); err != nil {
			return err // never replace a good checkpoint with this
		}
		st := state
		st.RNG, _ = rng.MarshalBinary()
		var err error
		st.Optimizer, st.OptimizerTensors, err = optimizerCheckpoint(opt.State(), named)
		if err != nil {
			return err
		}
		st.Config = r.ModelConfig
		if neg != nil {
			if err := neg.save(&st); err != nil {
				return err
			}
		}
		return checkpoint.Save(filepath.Join(ckDir, name), m, st)
	}
	lastSave := time.Now()
	// endEpoch evaluates after the steps of an epoch (or of the run),
	// logs the epoch and saves the latest and best checkpoints. Cancelled
	// during the evaluation, it saves the latest checkpoint with the
	// evaluation pending (a resumed run does it first).
	endEpoch := func() error {
		testBPD := math.NaN()
		if r.Test != nil {
			// Drop the training step's recycled buffers first: evaluation
			// uses other shapes, and kept beside its own they raise the
			// peak memory (docs/perf.md).
			tensor.ReleaseBuffers()
			// Batches of 64 (not the default 256) let an interrupt stop
			// the evaluation sooner; the scores are the same (the noise
			// is drawn in image order).
			ll, err := (&ood.LogLikelihood{Model: m, Seed: cfg.Seed, Batch: 64}).Score(ctx, r.Test, cfg.TestLimit)
			if cerr := ctx.Err(); cerr != nil {
				if serr := save("latest"); serr != nil {
					return fmt.Errorf("saving checkpoint after interrupt: %w", serr)
				}
				return cerr
			}
			if err != nil {
				return err
			}
			testBPD = meanPerDim(ll, shape)
			// evaluation batches have other shapes than training ones:
			// drop their recycled buffers rather than keep both sets
			tensor.ReleaseBuffers()
		}
		m.SetTraining(true)
		rate := float64(imgs) / time.Since(start).Seconds()
		trainBPD := math.NaN()
		if state.EpochSteps > 0 {
			trainBPD = state.EpochLoss / float64(state.EpochSteps)
		}
		writeRow(w, state.Step, state.Epoch, trainBPD, testBPD, cfg.LR, state.EpochGradNorm/math.Max(1, float64(state.EpochSteps)), rate)
		state.EvalPending = false
		state.EpochSteps, state.EpochLoss, state.EpochGradNorm = 0, 0, 0
		state.TestBPD = testBPD
		best := testBPD < state.BestTestBPD || r.Test == nil
		if best {
			// before saving latest too: a run resumed from it compares
			// later epochs with this one
			state.BestTestBPD = testBPD
		}
		if err := save("latest"); err != nil {
			return fmt.Errorf("saving checkpoint: %w", err)
		}
		if best {
			if err := save("best"); err != nil {
				return fmt.Errorf("saving best checkpoint: %w", err)
			}
		}
		lastSave = time.Now()
		if r.Progress != nil {
			fmt.Fprintf(r.Progress, "epoch %d: train %.4f %s, test %.4f %s, %.1f img/s\n", state.Epoch, trainBPD, unit, testBPD, unit, rate)
		}
		return nil
	}
	finish := func() Result {
		res.Steps, res.Epochs = state.Step, state.Epoch
		res.TestBPD, res.BestTestBPD = state.TestBPD, state.BestTestBPD
		res.Duration = time.Since(start)
		res.ImgPerSec = float64(imgs) / res.Duration.Seconds()
		return res
	}
	if state.EvalPending {
		// interrupted during the evaluation of an epoch end
		if err := endEpoch(); err != nil {
			return finish(), err
		}
	}
	var sumBPD, sumNorm float64
	var nLog int
	lastLog := time.Now()
	logImgs := 0
	for state.Epoch < cfg.Epochs && state.Step < total {
		perm := tensor.NewRNG(cfg.Seed*1_000_003 + uint64(state.Epoch)).Perm(r.Train.Len())
		for ; state.BatchInEpoch < stepsPerEpoch && state.Step < total; state.BatchInEpoch++ {
			if err := ctx.Err(); err != nil {
				if serr := save("latest"); serr != nil {
					return finish(), fmt.Errorf("saving checkpoint after interrupt: %w", serr)
				}
				return finish(), err
			}
			if cfg.CheckpointEvery > 0 && time.Since(lastSave) >= time.Duration(cfg.CheckpointEvery) {
				if err := save("latest"); err != nil {
					return finish(), fmt.Errorf("saving periodic checkpoint: %w", err)
				}
				lastSave = time.Now()
			}
			b := state.BatchInEpoch
			u := tensor.New(append([]int{rows}, shape.Dims()...)...)
			r.Train.Read(u.Data[:cfg.Batch*shape.Dim()], perm[b*cfg.Batch:(b+1)*cfg.Batch], rng.Rand)
			if neg != nil {
				neg.read(u.Data[cfg.Batch*shape.Dim():], cfg.Batch)
			}
			m.SetTraining(true)
			bpd, lossOK := r.gradient(u, obj, shape, cfg, params)
			if !lossOK || math.IsNaN(bpd) || math.IsInf(bpd, 0) {
				return finish(), r.nonFinite(u, state.Step, "")
			}
			norm := ClipGradNormGroups(params, clipGroups, cfg.ClipNorm)
			if math.IsNaN(norm) || math.IsInf(norm, 0) {
				return finish(), r.nonFinite(u, state.Step, fmt.Sprintf("gradient norm is %v", norm))
			}
			opt.Step(params, cfg.LRAt(state.Step))
			state.Step++
			imgs += cfg.Batch
			logImgs += cfg.Batch
			sumBPD += bpd
			sumNorm += norm
			nLog++
			state.EpochLoss += bpd
			state.EpochGradNorm += norm
			state.EpochSteps++
			bar.Update(state.Step, imgs, fmt.Sprintf("epoch %d  %s %.3f", state.Epoch+1, unit, bpd))
			if state.Step%cfg.LogEvery == 0 {
				rate := float64(logImgs) / time.Since(lastLog).Seconds()
				writeRow(w, state.Step, state.Epoch, sumBPD/float64(nLog), math.NaN(), cfg.LR, sumNorm/float64(nLog), rate)
				sumBPD, sumNorm, nLog, logImgs, lastLog = 0, 0, 0, 0, time.Now()
			}
		}
		if state.BatchInEpoch == stepsPerEpoch {
			state.Epoch++
			state.BatchInEpoch = 0
		}
		// else stopped by MaxSteps mid-epoch: a resumed run continues here
		state.EvalPending = true
		if err := endEpoch(); err != nil {
			return finish(), err
		}
	}
	m.SetTraining(false)
	tensor.ReleaseBuffers()
	return finish(), nil
}

// meanPerDim returns the mean of s.PerDim over the log-likelihoods ll.
func meanPerDim(ll []float64, s datakind.Shape) float64 {
	var sum float64
	for _, v := range ll {
		sum += s.PerDim(v)
	}
	return sum / float64(len(ll))
}

var logHeader = []string{"step", "epoch", "loss", "train_bpd", "test_bpd", "lr", "grad_norm", "img_per_s"}

// logHeaderFor returns the log's header for data of shape s: for tables,
// whose loss is in nats per dimension (no quantisation applies), the
// per-dimension columns say so.
func logHeaderFor(s datakind.Shape) []string {
	if s.Kind != datakind.Tabular {
		return logHeader
	}
	h := append([]string(nil), logHeader...)
	h[3], h[4] = "train_nats_per_dim", "test_nats_per_dim"
	return h
}

// openLog opens the training log; on resume it first drops rows past
// step (written after the checkpoint a crashed run last saved), so the
// log never repeats steps.
func openLog(path string, resume bool, step int, shape datakind.Shape) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating run folder: %w", err)
	}
	if resume {
		if err := truncateLog(path, step); err != nil {
			return nil, err
		}
	}
	flag := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		flag = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening training log: %w", err)
	}
	if st, _ := f.Stat(); st.Size() == 0 {
		w := csv.NewWriter(f)
		w.Write(logHeaderFor(shape))
		w.Flush()
	}
	return f, nil
}

func writeRow(w *csv.Writer, step, epoch int, trainBPD, testBPD, lr, norm, rate float64) {
	f := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	w.Write([]string{strconv.Itoa(step), strconv.Itoa(epoch), f(trainBPD), f(trainBPD), f(testBPD), f(lr), f(norm), f(rate)})
	w.Flush()
}

// truncateLog rewrites the log at path without rows whose step exceeds
// step. A missing log is not an error.
func truncateLog(path string, step int) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading training log: %w", err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		return fmt.Errorf("reading training log %s: %w", path, err)
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	for i, row := range rows {
		if i > 0 && len(row) > 0 {
			if s, err := strconv.Atoi(row[0]); err == nil && s > step {
				continue
			}
		}
		w.Write(row)
	}
	w.Flush()
	return atomicfile.WriteFile(path, buf.Bytes())
}
