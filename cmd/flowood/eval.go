package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/flowood/flowood/experiment"
)

var evalCmd = &command{
	UsageLine: "eval RUN --ood mnist,notmnist [--limit N] [--seed N] [--checkpoint latest|best] [--batch N]",
	Short: "score in-distribution and OOD sets; calibrate the OOD threshold at 95% TPR; write threshold.json, " +
		"scores.csv, metrics.json and the log-likelihood histogram to RUN/eval",
	Run: runEval,
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	oodList := fs.String("ood", "", "comma-separated OOD datasets (test splits)")
	limit := fs.Int("limit", 0, "score a random subset of N examples per set, drawn with --seed (0: all)")
	seed := fs.Uint64("seed", 0, "random seed of the --limit subsets")
	ck := fs.String("checkpoint", "", "checkpoint to evaluate: latest or best (default: best when the run has one, else latest, as detector.Load)")
	batch := fs.Int("batch", 256, "evaluation batch size")
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
	met, err := experiment.Evaluate(ctx, run, experiment.EvalOptions{OOD: splitList(*oodList), Limit: *limit, Seed: *seed,
		Checkpoint: *ck, Batch: *batch, Progress: stderr})
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
	fmt.Fprintf(stdout, "wrote %s, %s, %s and %s\n", filepath.Join(run, "eval", "threshold.json"), filepath.Join(run, "eval", "scores.csv"),
		filepath.Join(run, "eval", "metrics.json"), filepath.Join(run, "eval", "loglik-hist.png"))
	return nil
}
