package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/flowood/flowood/experiment"
)

var reproduceCmd = &command{
	UsageLine: "reproduce ID [--preset tiny|cpu|paper] [--out DIR] | reproduce --list",
	Short:     "reproduce a table or figure of the paper into DIR/report.md, beside the paper's numbers (runs are reused and resumed)",
	Run:       runReproduce,
}

func runReproduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reproduce", stderr)
	list := fs.Bool("list", false, "list the experiments with their expected wall time per preset (2 cores)")
	preset := fs.String("preset", "cpu", "tiny (minutes, small subsets), cpu (laptop-sized models, full data), paper (App. E sizes)")
	out := fs.String("out", "", "folder for the report and runs (default reproduce/ID)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *list {
		fmt.Fprintf(stdout, "%-8s %8s %8s %10s  %s\n", "ID", "tiny", "cpu", "paper", "what")
		for _, r := range experiment.Recipes() {
			fmt.Fprintf(stdout, "%-8s %8s %8s %10s  %s\n", r.ID, minutes(r.Minutes["tiny"]), minutes(r.Minutes["cpu"]), minutes(r.Minutes["paper"]), r.Title)
		}
		return nil
	}
	if len(pos) != 1 {
		return fmt.Errorf("reproduce: name one experiment (flowood reproduce --list), got %d arguments", len(pos))
	}
	dir := *out
	if dir == "" {
		dir = filepath.Join("reproduce", pos[0])
	}
	err = experiment.Reproduce(ctx, pos[0], *preset, dir, stderr)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("reproduce: interrupted; the runs keep their checkpoints, run the same command to continue: %w", err)
	}
	if err != nil {
		report := filepath.Join(dir, "report.md")
		if _, serr := os.Stat(report); serr == nil {
			return fmt.Errorf("reproduce %s: %w (report so far: %s)", pos[0], err, report)
		}
		return fmt.Errorf("reproduce %s: %w", pos[0], err)
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, "report.md"))
	return nil
}

// minutes formats an expected duration.
func minutes(m float64) string {
	switch {
	case m <= 0:
		return "-"
	case m < 90:
		return fmt.Sprintf("%.0f min", m)
	case m < 48*60:
		return fmt.Sprintf("%.1f h", m/60)
	}
	return fmt.Sprintf("%.0f d", m/60/24)
}
