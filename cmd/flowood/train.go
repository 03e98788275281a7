package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/train"
)

var trainCmd = &command{
	UsageLine: "train --model realnvp --data fashionmnist --preset cpu|tiny|paper [--epochs N] [--max-steps N] [--batch N] [--lr X] [--seed N] [--checkpoint-every 10m] --out RUN [--resume]",
	Short:     "train a flow by maximum likelihood into a run folder",
	Run:       runTrain,
}

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", stderr)
	model := fs.String("model", "realnvp", "model: realnvp")
	dataset := fs.String("data", "fashionmnist", "in-distribution dataset: mnist, fashionmnist")
	preset := fs.String("preset", "cpu", "model size and training defaults: paper, cpu, tiny")
	out := fs.String("out", "", "run folder to write (required)")
	resume := fs.Bool("resume", false, "continue the run in --out from its latest checkpoint")
	embedded := fs.Bool("embedded", false, "use the real subsets embedded in the binary (offline)")
	epochs := fs.Int("epochs", 0, "epochs (0: preset default)")
	maxSteps := fs.Int("max-steps", 0, "stop after this many steps (0: no limit)")
	batch := fs.Int("batch", 0, "batch size (0: preset default)")
	lr := fs.Float64("lr", 0, "learning rate (0: preset default)")
	wd := fs.Float64("weight-decay", -1, "weight decay (-1: preset default)")
	optName := fs.String("optimizer", "", "adam, adamw or rmsprop (default adam)")
	clip := fs.Float64("clip", 0, "clip the gradient norm at this value (0: default 100, negative: off)")
	seed := fs.Uint64("seed", 0, "random seed for initialisation, data order and dequantisation")
	trainLimit := fs.Int("train-limit", 0, "use only the first N training images (0: all)")
	testLimit := fs.Int("test-limit", 0, "evaluate test bits/dim on the first N test images after each epoch (0: all)")
	ckEvery := fs.String("checkpoint-every", "", "also save the latest checkpoint this often within an epoch: a duration such as 10m or 30s; 0 or off: only at epoch ends (default 10m, or what the resumed run used)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("train: unexpected argument %q", pos[0])
	}
	if *out == "" {
		return fmt.Errorf("train: --out RUN is required")
	}
	finite := func(name string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("train: --%s %v must be a finite number", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"lr", *lr}, {"weight-decay", *wd}, {"clip", *clip}} {
		if err := finite(f.name, f.v); err != nil {
			return err
		}
	}
	if *trainLimit < 0 || *testLimit < 0 {
		return fmt.Errorf("train: --train-limit %d and --test-limit %d must not be negative", *trainLimit, *testLimit)
	}
	var rc experiment.RunConfig
	if *resume {
		rc, err = experiment.ReadRunConfig(*out)
		if err != nil {
			return fmt.Errorf("train --resume: %w", err)
		}
	} else {
		rc, err = experiment.NewRunConfig(*model, *preset, *dataset)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		rc.Data.Embedded = *embedded
		rc.Data.TrainLimit = *trainLimit
		rc.Train.Seed = *seed
		rc.Train.TestLimit = *testLimit
		if *wd >= 0 {
			rc.Train.WeightDecay = *wd
		}
		if *optName != "" {
			rc.Train.Optimizer = *optName
		}
		if *clip != 0 {
			rc.Train.ClipNorm = *clip
		}
	}
	// flags that may also change a resumed run's length
	switch {
	case *epochs < 0:
		return fmt.Errorf("train: --epochs %d must be positive", *epochs)
	case *batch < 0 || *batch == 1:
		return fmt.Errorf("train: --batch %d must be at least 2", *batch)
	case *lr < 0:
		return fmt.Errorf("train: --lr %v must be positive", *lr)
	case *maxSteps < 0:
		return fmt.Errorf("train: --max-steps %d must not be negative", *maxSteps)
	}
	if *epochs > 0 {
		rc.Train.Epochs = *epochs
	}
	if *maxSteps > 0 {
		rc.Train.MaxSteps = *maxSteps
	}
	if *batch > 0 {
		if *resume && *batch != rc.Train.Batch {
			return fmt.Errorf("train: --batch %d: a resumed run keeps its batch size %d (its position is counted in batches)", *batch, rc.Train.Batch)
		}
		rc.Train.Batch = *batch
	}
	if *lr > 0 {
		rc.Train.LR = *lr
	}
	if *ckEvery != "" {
		every, err := train.ParseInterval(*ckEvery)
		if err != nil {
			return fmt.Errorf("train: --checkpoint-every: %w", err)
		}
		rc.Train.CheckpointEvery = every
	}
	if err := rc.Resolve(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	res, err := experiment.Train(ctx, rc, *out, *resume, stderr)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("train: interrupted; the latest checkpoint is saved, continue with: flowood train --out %s --resume", *out)
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if res.AlreadyFinished {
		limit := ""
		if rc.Train.MaxSteps > 0 {
			limit = fmt.Sprintf(", max steps %d", rc.Train.MaxSteps)
		}
		fmt.Fprintf(stdout, "run %s is already finished: %d steps, %d of %d epochs complete%s%s; nothing to train (to train longer, resume with a larger --epochs or --max-steps)\n",
			*out, res.Steps, res.Epochs, rc.Train.Epochs, limit, testBPDText(res.TestBPD, res.BestTestBPD))
		return nil
	}
	fmt.Fprintf(stdout, "trained %d steps in %s (%.1f img/s)%s; run folder %s\n",
		res.Steps, res.Duration.Round(1e9), res.ImgPerSec, testBPDText(res.TestBPD, res.BestTestBPD), *out)
	return nil
}

// testBPDText describes the last and best test bits/dim, or says there is
// no test measurement (NaN: no test set, or none evaluated yet).
func testBPDText(last, best float64) string {
	switch {
	case math.IsNaN(last):
		return "; no test bits/dim measured"
	case math.IsNaN(best) || math.IsInf(best, 0) || best == last:
		return fmt.Sprintf("; test bits/dim %.4f", last)
	}
	return fmt.Sprintf("; test bits/dim %.4f (best %.4f)", last, best)
}
