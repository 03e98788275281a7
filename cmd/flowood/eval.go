package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/flowood/flowood/experiment"
)

var evalCmd = &command{
	UsageLine: "eval RUN --ood mnist,notmnist [--score loglik,ic,ic_lzma,typicality,lr,waic,general,dose] [--background RUN] [--general RUN] [--ensemble RUN,...] [--batch-test M] [--match-compression] [--resize-variants area,bilinear,nearest] [--limit N] [--seed N] [--checkpoint latest|best] [--batch N]",
	Short: "score in-distribution and OOD sets; calibrate every score's OOD threshold at 95% TPR; write threshold.json, " +
		"thresholds.json (what flowood serve and package detector load), scores.csv, metrics.json and the log-likelihood histogram to RUN/eval",
	Run: runEval,
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	oodList := fs.String("ood", "", "comma-separated OOD datasets (test splits)")
	limit := fs.Int("limit", 0, "score a random subset of N examples per set, drawn with --seed (0: all)")
	seed := fs.Uint64("seed", 0, "random seed of the --limit subsets")
	ck := fs.String("checkpoint", "", "checkpoint to evaluate: latest or best (default: best when the run has one, else latest, as detector.Load)")
	batch := fs.Int("batch", 256, "evaluation batch size")
	scoreList := fs.String("score", "loglik", "comma-separated OOD scores (higher = more in-distribution): "+scoreHelp())
	background := fs.String("background", "", "run folder of the background model of --score lr (trained with --background-noise)")
	general := fs.String("general", "", "run folder of the general-domain model of --score general (e.g. trained on tinyimagenet)")
	ensemble := fs.String("ensemble", "", "comma-separated run folders that form, with RUN, the ensemble of --score waic (default: the members RUN/ensemble.json lists, for a run trained with flowood train --ensemble K)")
	batchTest := fs.Int("batch-test", 0, "with --score typicality, also the typicality batch test on batches of M inputs")
	matchComp := fs.Bool("match-compression", false, "when the training images are lossy (the mirror's JPEG CIFAR-10), also score each OOD set after the same JPEG round trip, as NAME@jpegQ")
	resizeVariants := fs.String("resize-variants", "", "comma-separated resize methods ("+strings.Join(experiment.ResizeMethods, ", ")+
		"): also score each OOD set that was resized to the model's size by each other method, as NAME@METHOD (and NAME@METHOD@jpegQ with --match-compression)")
	replicates := fs.Int("bootstrap", 200, "bootstrap replicates of each metric's 95% interval (0: none)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("eval: want exactly one run folder, got %d arguments", len(pos))
	}
	if *limit < 0 {
		return fmt.Errorf("eval: --limit %d must not be negative", *limit)
	}
	if *batch < 1 {
		return fmt.Errorf("eval: --batch %d must be positive", *batch)
	}
	run := pos[0]
	if *replicates < 0 {
		return fmt.Errorf("eval: --bootstrap %d must not be negative", *replicates)
	}
	if *replicates == 0 {
		*replicates = -1 // EvalOptions: negative is none
	}
	met, err := experiment.Evaluate(ctx, run, experiment.EvalOptions{OOD: splitList(*oodList), Limit: *limit, Seed: *seed,
		Checkpoint: *ck, Batch: *batch, Progress: stderr, Scores: splitList(*scoreList), Background: *background,
		General: *general, Ensemble: splitList(*ensemble), BatchTest: *batchTest, Bootstrap: *replicates, MatchCompression: *matchComp,
		ResizeVariants: splitList(*resizeVariants)})
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("eval: interrupted; nothing was written to %s: %w", filepath.Join(run, "eval"), err)
	}
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	met.PrintTable(stdout)
	fmt.Fprintf(stdout, "OOD threshold at %.0f%% TPR on %s %s (n = %d): log-likelihood %.6g (%.4f %s); an input below it is OOD\n",
		100*met.Threshold.TPR, met.Threshold.Dataset, met.Threshold.Split, met.Threshold.N,
		float64(met.Threshold.LogLikelihood), float64(met.Threshold.PerDim), met.Threshold.Unit)
	if len(met.Scores) > 1 {
		var parts []string
		for _, name := range met.Scores {
			parts = append(parts, fmt.Sprintf("%s %.6g", name, float64(met.Thresholds[name])))
		}
		fmt.Fprintf(stdout, "OOD thresholds at %.0f%% TPR, per score (an input below one is OOD by that score): %s\n",
			100*met.Threshold.TPR, strings.Join(parts, ", "))
	}
	fmt.Fprintf(stdout, "wrote %s, %s, %s, %s and %s\n", filepath.Join(run, "eval", "threshold.json"),
		filepath.Join(run, "eval", "thresholds.json"), filepath.Join(run, "eval", "scores.csv"),
		filepath.Join(run, "eval", "metrics.json"), filepath.Join(run, "eval", "loglik-hist.png"))
	return nil
}

// scoreHelp lists the scores with their descriptions.
func scoreHelp() string {
	var parts []string
	for _, n := range experiment.ScoreNames {
		parts = append(parts, n+" = "+experiment.ScoreDocs[n])
	}
	return strings.Join(parts, "; ")
}
