package main

import (
	"context"
	"flag"
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
	run func(ctx context.Context, run string, opt experiment.ViewOptions, vf vizFlags, stdout io.Writer) error
}{
	"logdet":   {"each term of log p(x) (prior, every layer's log-det), mean over in-distribution vs each OOD set", vizLogDet},
	"latents":  {"x, unsqueeze(z), z averaged over --k dequantisations, z with batch norm in train mode (Fig. 2, 8; App. G)", vizLatents},
	"coupling": {"each affine coupling's input, s, -t and output, un-squeezed (Fig. 1b-c, 3, 9, 11, 14; RealNVP and Glow)", vizCoupling},
	"resample": {"the latent's centre --side x --side square redrawn from N(0, I) and inverted back to images (Fig. 16)", vizResample},
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
	n := fs.Int("n", 0, "examples per set, a random subset drawn with --seed as eval --limit draws it (0: 500 for logdet, 8 for latents, 6 for resample, 2 for coupling)")
	seed := fs.Uint64("seed", 0, "seed of the subsets")
	out := fs.String("out", "", "folder to write the view's files to (required)")
	k := fs.Int("k", 40, "latents: dequantisation samples averaged; resample: resamplings per example")
	side := fs.Int("side", 10, "resample: side of the centre square of the latent redrawn")
	var index intList
	fs.Var(&index, "index", "show these examples (indices in each set's split, comma-separated) instead of a random --n")
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(pos) != 1 {
		return fmt.Errorf("viz %s: want exactly one run folder, got %d arguments", args[0], len(pos))
	}
	if *out == "" {
		return fmt.Errorf("viz %s: --out DIR is required", args[0])
	}
	if *n < 0 {
		return fmt.Errorf("viz %s: --n %d must not be negative", args[0], *n)
	}
	if *k < 1 {
		return fmt.Errorf("viz %s: --k %d must be positive", args[0], *k)
	}
	return v.run(ctx, pos[0], experiment.ViewOptions{Data: *data, OOD: splitList(*oodList), N: *n, Seed: *seed, Out: *out, Index: index},
		vizFlags{k: *k, side: *side, kSet: set["k"]}, stdout)
}

func vizLogDet(ctx context.Context, run string, opt experiment.ViewOptions, vf vizFlags, stdout io.Writer) error {
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

func vizCoupling(ctx context.Context, run string, opt experiment.ViewOptions, vf vizFlags, stdout io.Writer) error {
	maps, err := experiment.CouplingView(ctx, run, opt)
	if err != nil {
		return fmt.Errorf("viz coupling: %w", err)
	}
	var sets []string
	for s, m := range maps {
		sets = append(sets, fmt.Sprintf("%s (%d examples, %d couplings)", s, len(m), len(m[0])))
	}
	sort.Strings(sets)
	fmt.Fprintf(stdout, "wrote coupling-SET-INDEX.png (rows: couplings; columns: input, s, -t, output) and .npz to %s for %s\n",
		opt.Out, strings.Join(sets, ", "))
	return nil
}

// vizFlags are the flags of single views: --k (and whether it was
// given) and --side.
type vizFlags struct {
	k, side int
	kSet    bool
}

func vizResample(ctx context.Context, run string, opt experiment.ViewOptions, vf vizFlags, stdout io.Writer) error {
	k := vf.k
	if !vf.kSet {
		k = 4 // --k's default is the latents view's
	}
	before, _, err := experiment.ResampleView(ctx, run, opt, vf.side, k)
	if err != nil {
		return fmt.Errorf("viz resample: %w", err)
	}
	var sets []string
	for s := range before {
		sets = append(sets, s)
	}
	sort.Strings(sets)
	fmt.Fprintf(stdout, "wrote resample-SET.png and resample-SET.npy (examples x [input, reconstruction, %d resamplings] x H x W x C) to %s for %s\n",
		k, opt.Out, strings.Join(sets, ", "))
	return nil
}

func vizLatents(ctx context.Context, run string, opt experiment.ViewOptions, vf vizFlags, stdout io.Writer) error {
	arrs, err := experiment.LatentsView(ctx, run, opt, vf.k)
	if err != nil {
		return fmt.Errorf("viz latents: %w", err)
	}
	var sets []string
	for s := range arrs {
		sets = append(sets, s)
	}
	sort.Strings(sets)
	fmt.Fprintf(stdout, "wrote latents-SET.png and latents-SET.npy (examples x [%s] x H x W x C) to %s for %s\n",
		strings.Join(experiment.LatentVariants, ", "), opt.Out, strings.Join(sets, ", "))
	return nil
}

// intList is a comma-separated list of non-negative integers.
type intList []int

func (l *intList) String() string { return fmt.Sprint([]int(*l)) }

func (l *intList) Set(s string) error {
	for _, f := range strings.Split(s, ",") {
		var v int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &v); err != nil || v < 0 {
			return fmt.Errorf("%q is not a non-negative integer", f)
		}
		*l = append(*l, v)
	}
	return nil
}
