package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/train"
)

var trainCmd = &command{
	UsageLine: "train --model realnvp|glow|tabular --data fashionmnist|miniboone|FILE.npz --preset cpu|tiny|paper --out RUN [--embedded] [--epochs N] [--max-steps N] [--batch N] [--lr X] [--warmup N] [--weight-decay X] [--optimizer adam|adamw|rmsprop] [--clip X] [--seed N] [--train-limit N] [--test-limit N] [--checkpoint-every 10m] [--set name=value ...] [--mask NAME] [--bottleneck L] [--negative-data NAME [--negative-threshold C] [--negative-weight W]] [--background-noise MU] [--shape HxWxC] [--train-split val] [--ensemble K] [--resume | --force]",
	Short: "train a flow by maximum likelihood (or negative training, --negative-data) into a run folder; an existing run is continued with --resume " +
		"or replaced with --force, never silently",
	Run: runTrain,
}

func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", stderr)
	modelName := fs.String("model", "realnvp", "model: "+strings.Join(model.Names(), ", "))
	dataset := fs.String("data", "fashionmnist", "in-distribution dataset: mnist, fashionmnist, cifar10, ..., miniboone (flowood data list), or an .npz file of feature vectors (arrays train, val, test) for --model tabular")
	preset := fs.String("preset", "cpu", "model size and training defaults: "+presetHelp())
	out := fs.String("out", "", "run folder to write (required)")
	resume := fs.Bool("resume", false, "continue the run in --out from its latest checkpoint")
	force := fs.Bool("force", false, "replace the run already in --out (its checkpoints, log and evaluation are deleted)")
	embedded := fs.Bool("embedded", false, "use the real subsets embedded in the binary (offline)")
	epochs := fs.Int("epochs", 0, fmt.Sprintf("epochs, at most %d (0: preset default)", experiment.MaxEpochs))
	maxSteps := fs.Int("max-steps", 0, "stop after this many steps (0: no limit)")
	batch := fs.Int("batch", 0, fmt.Sprintf("batch size, 2 to %d (0: preset default)", experiment.MaxBatch))
	lr := fs.Float64("lr", 0, "learning rate (0: preset default)")
	warmup := fs.Int("warmup", -1, "warm the learning rate up linearly from 0 over the first N steps (0: none; -1: preset default, on for glow)")
	wd := fs.Float64("weight-decay", -1, "weight decay (-1: preset default)")
	optName := fs.String("optimizer", "", "adam, adamw or rmsprop (default adam)")
	clip := fs.Float64("clip", 0, "clip the gradient norm at this value (0: default 100, negative: off)")
	seed := fs.Uint64("seed", 0, "random seed for initialisation, data order, dequantisation and the --train-limit/--test-limit subsets")
	trainLimit := fs.Int("train-limit", 0, "train on a random subset of N training examples, drawn with --seed (0: all)")
	testLimit := fs.Int("test-limit", 0, "evaluate test bits/dim after each epoch on a random subset of N test examples (0: all)")
	bgNoise := fs.Float64("background-noise", 0, "train a background model: replace each training pixel with probability MU by a random value (Ren et al.; for eval --score lr --background RUN)")
	trainSplitFlag := fs.String("train-split", "", "train on this split instead of train: val, for a data set whose train split is not here (the mirror's Tiny-ImageNet, for a general-domain model); held-out bits/dim are then measured on data the run may have trained on, and the run says so")
	shapeFlag := fs.String("shape", "", "convert the images to HxWxC (e.g. 28x28x1: a general-domain model of tinyimagenet for a FashionMNIST run, eval --score general)")
	var sets modelOptions
	fs.Var(&sets, "set", "set a field of the model's configuration (config.json model_config), repeatable: --set name=value")
	maskName := fs.String("mask", "", "mask sequence of the spatial couplings (realnvp): checkerboard, horizontal, vertical, cycle, centre, channel or bitmap:PATH.png; shorthand of --set mask=NAME")
	bottleneck := fs.Int("bottleneck", 0, "dimension l of a fully connected bottleneck in every st-network (realnvp, App. K; 0: none); shorthand of --set bottleneck=L")
	negData := fs.String("negative-data", "", "negative training (App. D, eq. 6): also push down the log-likelihood of this dataset's train split (converted to --data's image shape), where it is above --negative-threshold; objective \"negative\" in config.json")
	negThreshold := new(optionalFloat)
	fs.Var(negThreshold, "negative-threshold", "with --negative-data: the paper's threshold `C` in its scale, nats of the reference code's log p (log p of pixels in [0,256)^D with its 255/256 rescaling; flowood's log p(u) of u in [0,1)^D is above C when log p(u) > C + D ln(256^2/255)); default the paper's: -30000 for grayscale, -100000 for colour")
	negWeight := fs.Float64("negative-weight", 0, "with --negative-data: weight w of the OOD term; loss = (L(train) - w L(OOD above c))/(1+w) (default 1, the reference code's)")
	ensembleK := fs.Int("ensemble", 0, "train an ensemble of K runs with seeds --seed, --seed+1, ...: --out is member 0, the others go in --out/ensemble/1..K-1 "+
		"(listed in --out/ensemble.json; eval --score waic uses them); with --resume, K above the run's size adds members (default: 1, or the resumed run's size)")
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
	if *resume && *force {
		return fmt.Errorf("train: --resume continues the run in %s and --force replaces it: give one", *out)
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
	}{{"lr", *lr}, {"weight-decay", *wd}, {"clip", *clip}, {"negative-weight", *negWeight}} {
		if err := finite(f.name, f.v); err != nil {
			return err
		}
	}
	switch {
	case *trainLimit < 0 || *testLimit < 0:
		return fmt.Errorf("train: --train-limit %d and --test-limit %d must not be negative", *trainLimit, *testLimit)
	case *epochs < 0:
		return fmt.Errorf("train: --epochs %d must be positive", *epochs)
	case *epochs > experiment.MaxEpochs:
		return fmt.Errorf("train: --epochs %d is more than %d", *epochs, experiment.MaxEpochs)
	case *batch < 0 || *batch == 1:
		return fmt.Errorf("train: --batch %d must be at least 2", *batch)
	case *batch > experiment.MaxBatch:
		return fmt.Errorf("train: --batch %d is more than %d", *batch, experiment.MaxBatch)
	case *lr < 0:
		return fmt.Errorf("train: --lr %v must be positive", *lr)
	case *maxSteps < 0:
		return fmt.Errorf("train: --max-steps %d must not be negative", *maxSteps)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["ensemble"] && *ensembleK < 1 {
		return fmt.Errorf("train: --ensemble %d: an ensemble has at least 1 member", *ensembleK)
	}
	if !set["ensemble"] && !*resume {
		*ensembleK = 1
	}
	if err := checkNegativeFlags(set, *negData, negThreshold.v, *negWeight); err != nil {
		return err
	}
	shorthands, err := optionShorthands(set, *maskName, *bottleneck)
	if err != nil {
		return err
	}
	var rc experiment.RunConfig
	if *resume {
		rc, err = experiment.ReadRunConfig(*out)
		if err != nil {
			return fmt.Errorf("train --resume: %w", err)
		}
		if set["shape"] || set["background-noise"] || set["train-split"] {
			return fmt.Errorf("train --resume: --shape, --train-split and --background-noise belong to the run's data; leave them out, or train a new run into another --out")
		}
		if len(shorthands) > 0 {
			return fmt.Errorf("train --resume: --%s: a resumed run keeps its model configuration; train a new run into another --out", shorthands[0][0])
		}
		if len(sets) > 0 {
			return fmt.Errorf("train --resume: --set %s=%s: a resumed run keeps its model configuration; train a new run into another --out", sets[0][0], sets[0][1])
		}
		if err := sameRun(rc, set, *modelName, *preset, *dataset, *embedded, *trainLimit, *testLimit, *seed, *wd, *optName, *clip); err != nil {
			return fmt.Errorf("train --resume: %w", err)
		}
		if err := sameNegative(rc, set, *negData, negThreshold.v, *negWeight); err != nil {
			return fmt.Errorf("train --resume: %w", err)
		}
	} else {
		var shape datakind.Shape
		if *shapeFlag != "" {
			var h, w, c int
			if n, err := fmt.Sscanf(*shapeFlag, "%dx%dx%d", &h, &w, &c); n != 3 || err != nil {
				return fmt.Errorf("train: --shape %q: want HxWxC, such as 28x28x1", *shapeFlag)
			}
			shape = datakind.ImageShape(h, w, c)
		}
		rc, err = experiment.NewRunConfigShape(*modelName, *preset, *dataset, shape)
		if err != nil {
			return fmt.Errorf("train: %w", err)
		}
		rc.Data.BackgroundNoise = *bgNoise
		switch *trainSplitFlag {
		case "", "train":
		case "val":
			rc.Data.TrainSplit = "val"
		default:
			return fmt.Errorf("train: --train-split %q: want train or val", *trainSplitFlag)
		}
		rc.Data.Embedded = *embedded
		rc.Data.TrainLimit = *trainLimit
		rc.Data.SubsetSeed = *seed
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
		for _, kv := range shorthands {
			if err := rc.SetModelOption(kv[0], kv[1]); err != nil {
				return fmt.Errorf("train: --%s %s: %w", kv[0], kv[1], err)
			}
		}
		for _, kv := range sets {
			if err := rc.SetModelOption(kv[0], kv[1]); err != nil {
				return fmt.Errorf("train: --set %s=%s: %w", kv[0], kv[1], err)
			}
		}
		setNegative(&rc, *negData, negThreshold.value(), *negWeight)
	}
	// flags that may also change a resumed run's length
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
	if *warmup >= 0 {
		rc.Train.Warmup = *warmup
	} else if *warmup != -1 {
		return fmt.Errorf("train: --warmup %d must not be negative", *warmup)
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
	results, err := experiment.TrainEnsemble(ctx, rc, *out, *ensembleK, experiment.TrainOptions{Resume: *resume, Force: *force, Progress: stderr})
	switch {
	case errors.Is(err, experiment.ErrRunExists):
		return fmt.Errorf("train: %s already holds a run (config.json, checkpoints, train-log.csv); nothing was changed: "+
			"continue it with --resume (flowood train --out %s --resume), or replace it with --force", *out, *out)
	case errors.Is(err, runfile.ErrLocked):
		return fmt.Errorf("train: %w; nothing was changed (is a training already running there?)", err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("train: interrupted; the latest checkpoint is saved, continue with: flowood train --out %s --resume: %w", *out, err)
	case err != nil:
		return fmt.Errorf("train: %w", err)
	}
	dirs, seeds := []string{*out}, []uint64{rc.Train.Seed}
	if len(results) > 1 {
		ens, err := experiment.ReadEnsemble(*out)
		if err != nil || ens == nil {
			return fmt.Errorf("train: the ensemble trained but its list of members is unreadable: %v", err)
		}
		dirs = append(dirs, ens.Runs(*out)...)
		for _, m := range ens.Members {
			seeds = append(seeds, m.Seed)
		}
	}
	for i, res := range results {
		dir := dirs[i]
		if len(results) > 1 {
			fmt.Fprintf(stdout, "member %d/%d (seed %d): ", i+1, len(results), seeds[i])
		}
		if res.AlreadyFinished {
			limit := ""
			if rc.Train.MaxSteps > 0 {
				limit = fmt.Sprintf(", max steps %d", rc.Train.MaxSteps)
			}
			fmt.Fprintf(stdout, "run %s is already finished: %d steps, %d of %d epochs complete%s%s; nothing to train (to train longer, resume with a larger --epochs or --max-steps)\n",
				dir, res.Steps, res.Epochs, rc.Train.Epochs, limit, testBPDText(res.TestBPD, res.BestTestBPD, rc.Data.Shape.Unit()))
			continue
		}
		fmt.Fprintf(stdout, "trained %d steps in %s (%.1f img/s)%s; run folder %s\n",
			res.Steps, res.Duration.Round(1e9), res.ImgPerSec, testBPDText(res.TestBPD, res.BestTestBPD, rc.Data.Shape.Unit()), dir)
	}
	if len(results) > 1 {
		fmt.Fprintf(stdout, "ensemble of %d members in %s (%s); flowood eval %s --score waic uses them\n",
			len(results), *out, filepath.Join(*out, experiment.EnsembleFile), *out)
	}
	return nil
}

// sameRun returns an error naming the first flag in set whose value
// differs from the resumed run's configuration rc: a resumed run keeps its
// model, data and optimisation (only its length and learning rate may
// change), and a flag that says otherwise is a mistake to point out rather
// than ignore.
func sameRun(rc experiment.RunConfig, set map[string]bool, modelName, preset, dataset string, embedded bool,
	trainLimit, testLimit int, seed uint64, wd float64, optName string, clip float64) error {
	type check struct {
		flag       string
		given, run any
	}
	checks := []check{
		{"model", modelName, rc.Model},
		{"preset", preset, rc.Preset},
		{"data", dataset, rc.Data.Name},
		{"embedded", embedded, rc.Data.Embedded},
		{"train-limit", trainLimit, rc.Data.TrainLimit},
		{"test-limit", testLimit, rc.Train.TestLimit},
		{"seed", seed, rc.Train.Seed},
		{"optimizer", optName, rc.Train.Optimizer},
	}
	if wd >= 0 {
		checks = append(checks, check{"weight-decay", wd, rc.Train.WeightDecay})
	}
	if clip != 0 {
		checks = append(checks, check{"clip", clip, rc.Train.ClipNorm})
	}
	for _, c := range checks {
		if set[c.flag] && c.given != c.run {
			return fmt.Errorf("--%s %v differs from the run's %v (config.json): a resumed run keeps its model, data and "+
				"optimisation; leave --%s out, or train a new run into another --out", c.flag, c.given, c.run, c.flag)
		}
	}
	return nil
}

// testBPDText describes the last and best test loss per dimension in
// unit (bits/dim, or nats/dim for tables), or says there is no test
// measurement (NaN: no test set, or none evaluated yet).
func testBPDText(last, best float64, unit string) string {
	switch {
	case math.IsNaN(last):
		return "; no test " + unit + " measured"
	case math.IsNaN(best) || math.IsInf(best, 0) || best == last:
		return fmt.Sprintf("; test %s %.4f", unit, last)
	}
	return fmt.Sprintf("; test %s %.4f (best %.4f)", unit, last, best)
}

// modelOptions collects repeated --set name=value flags in order.
type modelOptions [][2]string

func (o *modelOptions) String() string {
	var parts []string
	for _, kv := range *o {
		parts = append(parts, kv[0]+"="+kv[1])
	}
	return strings.Join(parts, " ")
}

func (o *modelOptions) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, as in --set mask=cycle")
	}
	*o = append(*o, [2]string{name, value})
	return nil
}

// optionShorthands returns the model options that --mask and --bottleneck
// (those in set) stand for, as --set name=value pairs; a bitmap mask's
// path is made absolute, so that evaluation finds the file from any
// directory.
func optionShorthands(set map[string]bool, maskName string, bottleneck int) ([][2]string, error) {
	var kv [][2]string
	if set["mask"] {
		if path, ok := strings.CutPrefix(maskName, "bitmap:"); ok && path != "" {
			abs, err := filepath.Abs(path)
			if err != nil {
				return nil, fmt.Errorf("train: --mask %s: %w", maskName, err)
			}
			maskName = "bitmap:" + abs
		}
		kv = append(kv, [2]string{"mask", maskName})
	}
	if set["bottleneck"] {
		if bottleneck < 0 {
			return nil, fmt.Errorf("train: --bottleneck %d must not be negative (0: none)", bottleneck)
		}
		kv = append(kv, [2]string{"bottleneck", strconv.Itoa(bottleneck)})
	}
	return kv, nil
}

// presetHelp lists each registered model's presets.
func presetHelp() string {
	var parts []string
	for _, n := range model.Names() {
		if e, err := model.Lookup(n); err == nil {
			parts = append(parts, n+": "+strings.Join(e.Presets, ", "))
		}
	}
	return strings.Join(parts, "; ")
}
