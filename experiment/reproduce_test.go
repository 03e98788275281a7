package experiment

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
)

// TestReproduceTiny runs every recipe at the tiny preset: each finishes
// and writes a report with its measured table, its commands and the
// machine; a second run of one reuses its runs and only evaluates.
// Without FLOWOOD_MIRROR only the embedded subsets are reachable, and
// the reports say which rows were not run.
func TestReproduceTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("trains several tiny models")
	}
	for _, rec := range Recipes() {
		if rec.ID == "table2b" {
			continue // TestTable2bFixture: its data are not in the mirror
		}
		t.Run(rec.ID, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), rec.ID)
			if err := Reproduce(context.Background(), rec.ID, "tiny", out, nil); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(out, "report.md"))
			if err != nil {
				t.Fatal(err)
			}
			// the data files listed, not only the list's heading
			wants := []string{"# " + rec.ID, "AUROC", "flowood train", "Wall time", "Data files (SHA-256):\n\n- "}
			if rec.ID == "scores" {
				// the listed eval command names its reference runs
				wants = append(wants, " --background ")
			}
			if missing := missingData(rec.ID); missing != "" {
				// a fresh machine without the mirror: the report must
				// say what is missing instead of failing
				wants = []string{"# " + rec.ID, "ot run**", missing + " is not in the cache or the mirror", "Wall time"}
			}
			for _, want := range wants {
				if want == "AUROC" && rec.ID != "table1" && rec.ID != "scores" && rec.ID != "table2a" {
					want = map[string]string{"fig1a": "mean log-likelihood", "fig2": "latents-mnist-test.png",
						"fig16": "resample-mnist-test.png", "logdet": "logdet-diff.png", "fig3": "coupling-glow", "fig5": "negative data"}[rec.ID]
				}
				if !strings.Contains(string(b), want) {
					t.Errorf("report lacks %q:\n%s", want, b)
				}
			}
			if rec.ID == "scores" {
				// the published numbers beside the measured ones (the
				// embedded FashionMNIST -> MNIST pair always runs)
				for _, want := range []string{"## Beside the published numbers", "Trained on fashionmnist, OOD mnist:",
					"| 10.8 | RealNVP (the paper's App. E training) | Kirichenko et al. 2020, Table 1 (App. F) |", "| lr | ", notFound} {
					if !strings.Contains(string(b), want) {
						t.Errorf("scores report lacks %q:\n%s", want, b)
					}
				}
			}
			if rec.ID == "table2a" && missingData(rec.ID) == "" {
				// a second run reuses the extractor's embeddings and
				// gives the same table
				npz := filepath.Join(out, "embeddings", "cifar10.npz")
				st, err := os.Stat(npz)
				if err != nil {
					t.Fatal(err)
				}
				var progress bytes.Buffer
				if err := Reproduce(context.Background(), rec.ID, "tiny", out, &progress); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(progress.String(), "reusing the feature extractor's embeddings") || strings.Contains(progress.String(), "training the feature extractor") {
					t.Errorf("second run did not reuse the embeddings:\n%s", progress.String())
				}
				if st2, err := os.Stat(npz); err != nil || !st2.ModTime().Equal(st.ModTime()) {
					t.Errorf("second run rewrote %s (%v)", npz, err)
				}
				b2, err := os.ReadFile(filepath.Join(out, "report.md"))
				if err != nil {
					t.Fatal(err)
				}
				if got, want := tableRows(string(b2)), tableRows(string(b)); got != want || want == "" {
					t.Errorf("second run's table:\n%s\nfirst run's:\n%s", got, want)
				}
				// embeddings of an older extractor are refused, not replaced
				man := filepath.Join(out, "embeddings", "manifest.json")
				mb, err := os.ReadFile(man)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(man, bytes.Replace(mb, []byte(`"version": 2`), []byte(`"version": 1`), 1), 0o644); err != nil {
					t.Fatal(err)
				}
				if err := Reproduce(context.Background(), rec.ID, "tiny", out, nil); err == nil || !strings.Contains(err.Error(), "move") || !strings.Contains(err.Error(), "manifest.json") {
					t.Errorf("embeddings of version 1: %v", err)
				}
				if st2, err := os.Stat(npz); err != nil || !st2.ModTime().Equal(st.ModTime()) {
					t.Errorf("the refused run rewrote %s (%v)", npz, err)
				}
			}
			if rec.ID != "fig1a" {
				return
			}
			st, err := os.Stat(filepath.Join(out, "runs", "realnvp-fashionmnist", "checkpoint", "latest", "model.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			if err := Reproduce(context.Background(), rec.ID, "tiny", out, nil); err != nil {
				t.Fatal(err)
			}
			st2, err := os.Stat(filepath.Join(out, "runs", "realnvp-fashionmnist", "checkpoint", "latest", "model.safetensors"))
			if err != nil || !st2.ModTime().Equal(st.ModTime()) {
				t.Errorf("a second reproduction retrained the run (%v)", err)
			}
			if b, err = os.ReadFile(filepath.Join(out, "report.md")); err != nil || !strings.Contains(string(b), "Runs reused, already trained before this invocation") || !strings.Contains(string(b), "realnvp-fashionmnist.") {
				t.Errorf("the second report does not say the run was reused (%v):\n%s", err, b)
			}
		})
	}
}

func TestReproduceErrors(t *testing.T) {
	if err := Reproduce(context.Background(), "table99", "tiny", t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "fig1a") || !strings.Contains(err.Error(), "table1") {
		t.Errorf("unknown experiment: %v", err)
	}
	if err := Reproduce(context.Background(), "table1", "huge", t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "unknown preset") {
		t.Errorf("unknown preset: %v", err)
	}
}

// TestTable2bFixture runs table2b on a mirror holding a small HEPMASS
// fixture in the published file format (gzip CSV: a header line, then
// label, 27 features and the mass per row; values drawn here, the two
// classes with shifted means): the per-class runs train and the report
// gives both rows (the raw MINIBOONE is said to be missing).
func TestTable2bFixture(t *testing.T) {
	mirror := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	for _, f := range []struct {
		name string
		n    int
	}{{"1000_train.csv.gz", 1200}, {"1000_test.csv.gz", 400}} {
		var s strings.Builder
		s.WriteString("# label")
		for j := range 27 {
			fmt.Fprintf(&s, ",f%d", j)
		}
		s.WriteString(",mass\n")
		for i := range f.n {
			c := i % 2
			fmt.Fprintf(&s, "%d", c)
			for range 27 {
				fmt.Fprintf(&s, ",%.6f", rng.NormFloat64()+float64(c))
			}
			s.WriteString(",1000\n")
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(s.String()))
		zw.Close()
		if err := os.MkdirAll(filepath.Join(mirror, "hepmass"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mirror, "hepmass", f.name), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("FLOWOOD_MIRROR", mirror)
	out := filepath.Join(t.TempDir(), "t2b")
	if err := Reproduce(context.Background(), "table2b", "tiny", out, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, want := range []string{"| hepmass | background (signal) | 27 |", "| hepmass | signal (background) | 27 |", "miniboone: **not run**", "flowood train --model tabular"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report lacks %q:\n%s", want, b)
		}
	}
}

// missingData returns the first data set split ("cifar10 train") that
// recipe id needs at the tiny preset beyond the embedded subsets and
// that is neither in the cache nor in the mirror, or "".
func missingData(id string) string {
	needs := map[string][][2]string{
		"table2a": {{"cifar10", "train"}},
		"fig5":    {{"fashionmnist", "train"}, {"mnist", "train"}},
	}[id]
	for _, n := range needs {
		switch data.Status(n[0], n[1], data.Options{}, false).Where {
		case data.WhereNotAvailable, data.WhereDownload:
			return n[0] + " " + n[1]
		}
	}
	return ""
}

// TestAppKConfigCPU checks that the App. K runs of fig10 and fig13 at the
// cpu preset are trained as the recipes say (1 epoch, 2000 test images)
// with the appk_cpu model, not for the model preset's own 10 epochs.
func TestAppKConfigCPU(t *testing.T) {
	r := &Reproduction{Preset: "cpu"}
	rc, err := r.appKConfig()
	if err != nil {
		t.Fatal(err)
	}
	if rc.Preset != "appk_cpu" || rc.Train.Epochs != 1 || rc.Train.TestLimit != 2000 {
		t.Errorf("App. K cpu run: preset %q, %d epochs, test limit %d; want appk_cpu, 1, 2000", rc.Preset, rc.Train.Epochs, rc.Train.TestLimit)
	}
	if r.Preset != "cpu" {
		t.Errorf("appKConfig changed the reproduction's preset to %q", r.Preset)
	}
}

// tableRows returns the lines of a report's markdown tables.
func tableRows(report string) string {
	var rows []string
	for _, l := range strings.Split(report, "\n") {
		if strings.HasPrefix(l, "|") {
			rows = append(rows, l)
		}
	}
	return strings.Join(rows, "\n")
}
