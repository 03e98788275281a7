package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"

	"github.com/flowood/flowood/bench"
)

var benchCmd = &command{
	UsageLine: "bench [--only NAME] [--quick] [--against-pytorch [--python /usr/bin/python3] [--rounds N]]",
	Short:     "run the fixed benchmark set; print one JSON object per line",
	Run:       runBench,
}

// pytorchPeers maps each Go benchmark to bench/pytorch/bench.py's names.
var pytorchPeers = map[string][]string{
	"sgemm":               {"sgemm_numpy", "sgemm_torch"},
	"realnvp_train":       {"realnvp_train"},
	"realnvp_eval":        {"realnvp_eval"},
	"coupling4_train":     {"coupling4_train"},
	"realnvp_paper_train": {"realnvp_paper_train"},
	"tabular_train":       {"tabular_train"},
	"glow_train":          {"glow_train"},
}

// ratios are the comparison lines printed with --against-pytorch:
// name, numerator metric, denominator metric.
var ratios = [][3]string{
	{"train_speedup_vs_pytorch", "realnvp_train_img_per_s", "pytorch_realnvp_train_img_per_s"},
	{"eval_speedup_vs_pytorch", "realnvp_eval_img_per_s", "pytorch_realnvp_eval_img_per_s"},
	{"coupling4_speedup_vs_pytorch", "coupling4_train_img_per_s", "pytorch_coupling4_train_img_per_s"},
	{"paper_train_speedup_vs_pytorch", "realnvp_paper_train_img_per_s", "pytorch_realnvp_paper_train_img_per_s"},
	{"paper_recompute_train_speedup_vs_pytorch", "realnvp_paper_recompute_train_img_per_s", "pytorch_realnvp_paper_train_img_per_s"},
	{"tabular_train_speedup_vs_pytorch", "tabular_train_img_per_s", "pytorch_tabular_train_img_per_s"},
	{"glow_train_speedup_vs_pytorch", "glow_train_img_per_s", "pytorch_glow_train_img_per_s"},
	{"gemm_vs_openblas", "gemm_conv_gflops", "openblas_sgemm_gflops"},
	{"gemm_vs_torch", "gemm_conv_gflops", "torch_sgemm_gflops"},
	{"train_peak_rss_vs_pytorch", "realnvp_train_peak_rss_mib", "pytorch_realnvp_train_peak_rss_mib"},
	{"eval_peak_rss_vs_pytorch", "realnvp_eval_peak_rss_mib", "pytorch_realnvp_eval_peak_rss_mib"},
	{"paper_train_peak_rss_vs_pytorch", "realnvp_paper_train_peak_rss_mib", "pytorch_realnvp_paper_train_peak_rss_mib"},
	{"paper_recompute_train_peak_rss_vs_pytorch", "realnvp_paper_recompute_train_peak_rss_mib", "pytorch_realnvp_paper_train_peak_rss_mib"},
	{"glow_train_peak_rss_vs_pytorch", "glow_train_peak_rss_mib", "pytorch_glow_train_peak_rss_mib"},
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	only := fs.String("only", "", "run one benchmark in this process")
	quick := fs.Bool("quick", false, "a couple of steps per benchmark (smoke test)")
	against := fs.Bool("against-pytorch", false, "also run bench/pytorch/bench.py, alternating, and print ratios")
	python := fs.String("python", "/usr/bin/python3", "python with torch (Debian python3-torch)")
	script := fs.String("pytorch-script", "bench/pytorch/bench.py", "the PyTorch reference benchmarks")
	rounds := fs.Int("rounds", 2, "rounds of alternation with --against-pytorch; the median of rounds is reported")
	skip := fs.String("skip", "", "comma-separated benchmarks to leave out")
	if _, err := parseInterleaved(fs, args); err != nil {
		return err
	}
	if *only != "" {
		b, err := bench.Find(*only)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		emit := func(r bench.Result) { bench.Write(stdout, r) }
		if err := b.Run(*quick, emit); err != nil {
			return fmt.Errorf("bench %s: %w", b.Name, err)
		}
		emit(bench.Result{Name: b.Name + "_peak_rss_mib", Unit: "MiB", Value: bench.PeakRSSMiB()})
		return nil
	}
	if *rounds < 1 {
		return fmt.Errorf("bench: --rounds %d must be positive", *rounds)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: finding own executable: %w", err)
	}
	skipped := map[string]bool{}
	for _, s := range splitList(*skip) {
		skipped[s] = true
	}
	if *against {
		if _, err := os.Stat(*script); err != nil {
			return fmt.Errorf("bench: --against-pytorch needs %s (run from the repository root): %w", *script, err)
		}
	}
	values := map[string][]float64{}
	units := map[string]string{}
	record := func(line []byte) {
		var r struct {
			Name  string  `json:"name"`
			Unit  string  `json:"unit"`
			Value float64 `json:"value"`
		}
		if json.Unmarshal(line, &r) == nil && r.Name != "" {
			values[r.Name] = append(values[r.Name], r.Value)
			units[r.Name] = r.Unit
		}
	}
	runChild := func(name string, cmd *exec.Cmd) error {
		var out bytes.Buffer
		cmd.Stdout = io.MultiWriter(&out, stdout)
		cmd.Stderr = stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("bench %s: %w", name, err)
		}
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			record(sc.Bytes())
		}
		return nil
	}
	n := 1
	if *against {
		n = *rounds
	}
	threads := strconv.Itoa(runtime.GOMAXPROCS(0))
	for round := 0; round < n; round++ {
		for _, b := range bench.All {
			if skipped[b.Name] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			goArgs := []string{"bench", "--only", b.Name}
			if *quick {
				goArgs = append(goArgs, "--quick")
			}
			if err := runChild(b.Name, exec.CommandContext(ctx, self, goArgs...)); err != nil {
				return err
			}
			if !*against {
				continue
			}
			for _, peer := range pytorchPeers[b.Name] {
				pyArgs := []string{*script, "--only", peer, "--threads", threads}
				if *quick {
					pyArgs = append(pyArgs, "--quick")
				}
				if err := runChild("pytorch "+peer, exec.CommandContext(ctx, *python, pyArgs...)); err != nil {
					return err
				}
			}
		}
	}
	med := func(name string) float64 {
		v := append([]float64(nil), values[name]...)
		if len(v) == 0 {
			return math.NaN()
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	peak := 0.0
	for name := range values {
		if len(name) > len("_peak_rss_mib") && name[len(name)-len("_peak_rss_mib"):] == "_peak_rss_mib" && name[:min(8, len(name))] != "pytorch_" {
			peak = math.Max(peak, med(name))
		}
	}
	bench.Write(stdout, bench.Result{Name: "peak_rss_mib", Unit: "MiB", Value: peak,
		Extra: map[string]any{"note": "largest peak RSS of the flowood benchmark processes"}})
	if *against {
		for _, r := range ratios {
			a, b := med(r[1]), med(r[2])
			if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
				continue
			}
			bench.Write(stdout, bench.Result{Name: r[0], Unit: "ratio", Value: a / b,
				Extra: map[string]any{"flowood": a, "pytorch": b, "rounds": n}})
		}
	}
	return nil
}
