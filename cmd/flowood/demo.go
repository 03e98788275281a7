package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/runfile"
)

var demoCmd = &command{
	UsageLine: "demo [--out DIR] [--epochs N] [--preset cpu|tiny]",
	Short:     "offline: train RealNVP on embedded FashionMNIST, score MNIST and NotMNIST, compare with the paper",
	Run:       runDemo,
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	out := fs.String("out", "flowood-demo", "run folder to write")
	epochs := fs.Int("epochs", 6, "training epochs over the embedded 8000 FashionMNIST images")
	preset := fs.String("preset", "cpu", "model preset (cpu, or tiny for a quick look)")
	seed := fs.Uint64("seed", 0, "random seed")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if *epochs < 1 {
		return fmt.Errorf("demo: --epochs %d must be positive", *epochs)
	}
	start := time.Now()
	rc, err := experiment.NewRunConfig("realnvp", *preset, "fashionmnist")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	rc.Data.Embedded = true
	rc.Train.Epochs = *epochs
	rc.Train.Seed = *seed
	fmt.Fprintf(stdout, "flowood demo: RealNVP (%s preset) on the embedded real FashionMNIST subset, then OOD scoring of MNIST and NotMNIST.\n", *preset)
	fmt.Fprintf(stdout, "This reproduces the paper's Table 1 / Figure 1a effect: flows give OOD digits HIGHER likelihood.\n\n")
	// The demo replaces its own earlier run in --out, never a run trained
	// on full datasets.
	if runfile.Exists(*out) {
		if old, err := experiment.ReadRunConfig(*out); err != nil || !old.Data.Embedded {
			return fmt.Errorf("demo: %s holds a run that is not a demo run (one on the embedded subsets); choose another --out", *out)
		}
	}
	res, err := experiment.Train(ctx, rc, *out, experiment.TrainOptions{Force: true, Progress: stderr})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintf(stdout, "trained %d steps (%.1f img/s); FashionMNIST test %.3f bits/dim\n\n", res.Steps, res.ImgPerSec, res.TestBPD)
	met, err := experiment.Evaluate(ctx, *out, experiment.EvalOptions{OOD: []string{"mnist", "notmnist"}, Progress: stderr})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	met.PrintTable(stdout)
	fmt.Fprintf(stdout, "\nhistogram of log-likelihoods (the paper's Fig. 1a): %s\n", filepath.Join(*out, "eval", "loglik-hist.png"))
	fmt.Fprintf(stdout, "scores: %s; metrics: %s\n", filepath.Join(*out, "eval", "scores.csv"), filepath.Join(*out, "eval", "metrics.json"))
	fmt.Fprintf(stdout, "total time %s\n", time.Since(start).Round(time.Second))
	return nil
}
