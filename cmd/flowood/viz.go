package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/flowood/flowood/experiment"
)

const vizUsage = "viz VIEW RUN --ood NAME,... [--data NAME] [--n N] [--seed S] --out DIR"

var vizCmd = &command{
	UsageLine: vizUsage,
	Short:     "the paper's views of a trained run, as PNG plus the raw arrays (.npy, .csv)",
	Run:       runViz,
}

// views are the subcommands of viz.
var views = map[string]struct {
	doc string
	run func(ctx context.Context, run string, opt experiment.ViewOptions, stdout io.Writer) error
}{
	"logdet": {"each term of log p(x) (prior, every layer's log-det), mean over in-distribution vs each OOD set", vizLogDet},
}

func vizNames() []string {
	var n []string
	for k := range views {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

func runViz(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		fmt.Fprintln(stdout, "usage: flowood "+vizUsage)
		for _, n := range vizNames() {
			fmt.Fprintf(stdout, "  %-8s %s\n", n, views[n].doc)
		}
		if len(args) == 0 {
			return fmt.Errorf("viz: name a view (%s)", strings.Join(vizNames(), ", "))
		}
		return nil
	}
	v, ok := views[args[0]]
	if !ok {
		return fmt.Errorf("viz: unknown view %q (known: %s)", args[0], strings.Join(vizNames(), ", "))
	}
	fs := newFlags("viz "+args[0], stderr)
	data := fs.String("data", "", "in-distribution dataset (default: the run's)")
	oodList := fs.String("ood", "", "comma-separated OOD datasets shown beside it")
	n := fs.Int("n", 500, "examples per set (a random subset, drawn with --seed as eval --limit draws it)")
	seed := fs.Uint64("seed", 0, "seed of the subsets")
	out := fs.String("out", "", "folder to write the view's files to (required)")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("viz %s: want exactly one run folder, got %d arguments", args[0], len(pos))
	}
	if *out == "" {
		return fmt.Errorf("viz %s: --out DIR is required", args[0])
	}
	if *n < 1 {
		return fmt.Errorf("viz %s: --n %d must be positive", args[0], *n)
	}
	return v.run(ctx, pos[0], experiment.ViewOptions{Data: *data, OOD: splitList(*oodList), N: *n, Seed: *seed, Out: *out}, stdout)
}

func vizLogDet(ctx context.Context, run string, opt experiment.ViewOptions, stdout io.Writer) error {
	terms, err := experiment.LogDetView(ctx, run, opt)
	if err != nil {
		return fmt.Errorf("viz logdet: %w", err)
	}
	var sets []string
	for s := range terms {
		sets = append(sets, s)
	}
	sort.Strings(sets)
	fmt.Fprintf(stdout, "mean of each term of log p(x) (nats) over %d examples:\n", opt.N)
	fmt.Fprintf(stdout, "%-24s", "term")
	for _, s := range sets {
		fmt.Fprintf(stdout, " %18s", s)
	}
	fmt.Fprintln(stdout)
	for k := range terms[sets[0]] {
		fmt.Fprintf(stdout, "%-24s", terms[sets[0]][k].Term)
		for _, s := range sets {
			fmt.Fprintf(stdout, " %18.2f", terms[s][k].Mean)
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "wrote logdet.png, logdet-diff.png, logdet.csv and logdet.npy to %s\n", opt.Out)
	return nil
}
