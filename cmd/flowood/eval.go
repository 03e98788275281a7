package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/flowood/flowood/experiment"
)

var evalCmd = &command{
	UsageLine: "eval RUN --ood mnist,notmnist [--limit N] [--checkpoint latest|best] [--batch N]",
	Short:     "score in-distribution and OOD sets; write scores.csv, metrics.json and the log-likelihood histogram",
	Run:       runEval,
}

func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", stderr)
	oodList := fs.String("ood", "", "comma-separated OOD datasets (test splits)")
	limit := fs.Int("limit", 0, "score at most N images per set (0: all)")
	ck := fs.String("checkpoint", "latest", "checkpoint to evaluate: latest or best")
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
	met, err := experiment.Evaluate(run, experiment.EvalOptions{OOD: splitList(*oodList), Limit: *limit,
		Checkpoint: *ck, Batch: *batch, Progress: stderr})
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	met.PrintTable(stdout)
	fmt.Fprintf(stdout, "wrote %s, %s and %s\n", filepath.Join(run, "eval", "scores.csv"),
		filepath.Join(run, "eval", "metrics.json"), filepath.Join(run, "eval", "loglik-hist.png"))
	return nil
}
