package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/viz"
)

const (
	dataUsage = "data list | fetch NAME... | verify | show NAME [--split S] [--n 64] [--out PNG]"
	dataShort = "list, fetch, verify and look at the datasets (cache, $FLOWOOD_MIRROR, Debian, download)"
)

var dataCmd = &command{UsageLine: dataUsage, Short: dataShort, Run: runData}

func runData(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("data: want a subcommand: list, fetch, verify or show (run 'flowood data -h')")
	}
	if isHelp(args[0]) || args[0] == "help" {
		fmt.Fprintf(stdout, "usage: flowood %s\n\n%s\n\n", dataUsage, dataShort)
		fmt.Fprintf(stdout, "Run 'flowood data SUBCOMMAND -h' for a subcommand's flags.\n")
		return nil
	}
	switch args[0] {
	case "list":
		return runDataList(args[1:], stdout, stderr)
	case "fetch":
		return runDataFetch(args[1:], stdout, stderr)
	case "verify":
		return runDataVerify(args[1:], stdout, stderr)
	case "show":
		return runDataShow(args[1:], stdout, stderr)
	}
	return fmt.Errorf("data: unknown subcommand %q (want list, fetch, verify or show)", args[0])
}

// dataFlags adds the source flags shared by the data subcommands.
func dataFlags(name string, stderr io.Writer) (*flag.FlagSet, *data.Options) {
	fs := newFlags("data "+name, stderr)
	opts := &data.Options{}
	fs.StringVar(&opts.Mirror, "mirror", "", "mirror root (default $FLOWOOD_MIRROR)")
	fs.StringVar(&opts.CacheDir, "cache", "", "cache root (default $XDG_CACHE_HOME/flowood)")
	fs.BoolVar(&opts.NoDownload, "no-download", false, "never download")
	return fs, opts
}

func runDataList(args []string, stdout, stderr io.Writer) error {
	fs, opts := dataFlags("list", stderr)
	quick := fs.Bool("quick", false, "do not read the files found to report shapes")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	names := pos
	if len(names) == 0 {
		names = data.Names()
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSPLIT\tSHAPE\tWHERE\tFORM")
	var failed []string
	for _, name := range names {
		splits, err := data.Splits(name)
		if err != nil {
			return fmt.Errorf("data list: %w", err)
		}
		kind := "images"
		if data.IsTabular(name) {
			kind = "tabular"
		}
		if note := data.Note(name); note != "" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\tby path\t%s\n", name, kind, note)
			continue
		}
		for _, split := range splits {
			st := data.Status(name, split, *opts, !*quick)
			shape := "-"
			if st.Shape != nil {
				shape = shapeStr(st.Shape)
			}
			where := st.Where
			if st.Err != nil {
				where = "error"
				failed = append(failed, st.Err.Error())
			}
			form := st.Form
			if form == "" {
				form = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", name, kind, split, shape, where, form)
		}
	}
	tw.Flush()
	if len(failed) > 0 {
		for _, f := range failed {
			fmt.Fprintln(stderr, "flowood: data list:", f)
		}
		return fmt.Errorf("data list: %d split(s) could not be read", len(failed))
	}
	return nil
}

func shapeStr(shape []int) string {
	s := make([]string, len(shape))
	for i, d := range shape {
		s[i] = strconv.Itoa(d)
	}
	return strings.Join(s, "x")
}

func runDataFetch(args []string, stdout, stderr io.Writer) error {
	fs, opts := dataFlags("fetch", stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return errors.New("data fetch: want at least one dataset name")
	}
	opts.Progress = stderr
	for _, name := range pos {
		sts, err := data.Fetch(name, *opts)
		if err != nil {
			return fmt.Errorf("data fetch: %w", err)
		}
		for _, st := range sts {
			fmt.Fprintf(stdout, "%s %s: %s (%s) %s\n", st.Name, st.Split, st.Where, st.Form, strings.Join(st.Paths, " "))
		}
	}
	return nil
}

func runDataVerify(args []string, stdout, stderr io.Writer) error {
	fs, opts := dataFlags("verify", stderr)
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("data verify: takes no arguments, got %q", pos[0])
	}
	checks := data.VerifyLocal(*opts)
	bad := 0
	for _, c := range checks {
		switch {
		case c.Err != nil:
			bad++
			fmt.Fprintf(stdout, "BAD %s %s %s: %v\n", c.Name, c.Split, c.Path, c.Err)
		case c.Want == "" && c.WantMD5 != "":
			fmt.Fprintf(stdout, "OK  %s %s %s (md5 as published; no recorded sha256; sha256 %s)\n", c.Name, c.Split, c.Path, c.SHA256)
		case c.Want == "":
			fmt.Fprintf(stdout, "OK  %s %s %s (no recorded sha256; sha256 %s)\n", c.Name, c.Split, c.Path, c.SHA256)
		default:
			fmt.Fprintf(stdout, "OK  %s %s %s\n", c.Name, c.Split, c.Path)
		}
	}
	fmt.Fprintf(stdout, "%d file(s) checked, %d bad\n", len(checks), bad)
	if bad > 0 {
		return fmt.Errorf("data verify: %d of %d file(s) failed their check", bad, len(checks))
	}
	return nil
}

func runDataShow(args []string, stdout, stderr io.Writer) error {
	fs, opts := dataFlags("show", stderr)
	split := fs.String("split", "", "split to show (default test, else val, else the first)")
	n := fs.Int("n", 64, "number of images in the grid")
	out := fs.String("out", "", "PNG file for the image grid (default NAME-SPLIT.png)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("data show: want exactly one dataset name, got %d arguments", len(pos))
	}
	if *n < 1 {
		return fmt.Errorf("data show: --n %d must be positive", *n)
	}
	name := strings.ToLower(pos[0])
	splits, err := data.Splits(name)
	if err != nil {
		return fmt.Errorf("data show: %w", err)
	}
	if note := data.Note(name); note != "" {
		return fmt.Errorf("data show: %s has no registered files (%s)", name, note)
	}
	sp := *split
	if sp == "" {
		sp = splits[0]
		for _, pref := range []string{"val", "test"} {
			if slices.Contains(splits, pref) {
				sp = pref
			}
		}
	}
	opts.Progress = stderr
	if data.IsTabular(name) {
		t, err := data.LoadTabular(name, sp, *opts)
		if err != nil {
			return fmt.Errorf("data show: %w", err)
		}
		printTableStats(stdout, t)
		return nil
	}
	im, err := data.Load(name, sp, *opts)
	if err != nil {
		return fmt.Errorf("data show: %w", err)
	}
	if im.N == 0 {
		return fmt.Errorf("data show: %s %s holds no images", name, sp)
	}
	path := *out
	if path == "" {
		path = name + "-" + sp + ".png"
	}
	k := min(*n, im.N)
	imgs := make([][]float32, k)
	for i := range k {
		px := im.Image(i)
		v := make([]float32, len(px))
		for j, p := range px {
			v[j] = float32(p) / 255
		}
		imgs[i] = v
	}
	cols := int(math.Ceil(math.Sqrt(float64(k))))
	if err := viz.ImageGrid(path, imgs, im.H, im.W, im.C, cols); err != nil {
		return fmt.Errorf("data show: %w", err)
	}
	fmt.Fprintf(stdout, "%s %s: %d images of %dx%dx%d; wrote the first %d to %s\n", name, sp, im.N, im.H, im.W, im.C, k, path)
	return nil
}

// printTableStats prints the count, mean, standard deviation, minimum and
// maximum of every feature of t.
func printTableStats(w io.Writer, t *data.Tabular) {
	fmt.Fprintf(w, "%s %s: %d rows x %d features", t.Name, t.Split, t.N, t.D)
	if t.Labels != nil {
		counts := map[uint8]int{}
		for _, l := range t.Labels {
			counts[l]++
		}
		var parts []string
		for l := range 256 {
			if c := counts[uint8(l)]; c > 0 {
				parts = append(parts, fmt.Sprintf("%d: %d", l, c))
			}
		}
		fmt.Fprintf(w, ", labels {%s}", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "feature\tmean\tstd\tmin\tmax\t")
	for j := range t.D {
		var sum, sq float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for i := range t.N {
			v := t.X[i*t.D+j]
			sum += v
			lo, hi = min(lo, v), max(hi, v)
		}
		mean := sum / float64(max(t.N, 1))
		for i := range t.N {
			d := t.X[i*t.D+j] - mean
			sq += d * d
		}
		std := math.Sqrt(sq / float64(max(t.N, 1)))
		if t.N == 0 {
			lo, hi = math.NaN(), math.NaN()
		}
		fmt.Fprintf(tw, "%d\t%.4g\t%.4g\t%.4g\t%.4g\t\n", j, mean, std, lo, hi)
	}
	tw.Flush()
}
