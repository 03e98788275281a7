package experiment

import (
	"context"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/ood"
)

// TestEvaluateResizeVariants trains a tiny RealNVP on FashionMNIST
// resized to 16x16 and scores MNIST (area-averaged to 16x16 like the
// training data) with the resize variants: each variant is a set of its
// own with its provenance, and its log-likelihoods equal those of the
// MNIST images resized here by nearest neighbour and scored directly.
func TestEvaluateResizeVariants(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	rc, err := NewRunConfigShape("realnvp", "tiny", "fashionmnist", datakind.ImageShape(16, 16, 1))
	if err != nil {
		t.Fatal(err)
	}
	rc.Data.Embedded = true
	rc.Train.MaxSteps, rc.Train.Seed, rc.Train.TestLimit = 3, 5, 32
	if err := rc.Resolve(); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(context.Background(), rc, run, TrainOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, ResizeVariants: []string{"cubic"}}); err == nil || !strings.Contains(err.Error(), "cubic") {
		t.Fatalf("unknown resize variant: %v", err)
	}
	const n = 20
	met, err := Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, Limit: n, Seed: 2, Bootstrap: -1,
		ResizeVariants: []string{"nearest", "area", "bilinear"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"mnist", "mnist@nearest", "mnist@bilinear"} {
		if _, ok := met.OOD[s]; !ok {
			t.Errorf("no OOD set %s (have %v)", s, keys(met.OOD))
		}
	}
	if _, ok := met.OOD["mnist@area"]; ok || len(met.OOD) != 3 {
		t.Errorf("OOD sets %v: area is mnist's own resize, its row is mnist", keys(met.OOD))
	}
	if r := met.OODSets["mnist@nearest"].Resampling; r == nil || r.Method != "nearest" || r.StoredWidth != 28 || r.Width != 16 {
		t.Errorf("mnist@nearest resampling %+v", r)
	}
	if r := met.In.Resampling; r == nil || r.Method != "area" {
		t.Errorf("in-distribution resampling %+v", r)
	}
	if len(met.ResizeNotes) != 0 {
		t.Errorf("notes %q for sets resized alike", met.ResizeNotes)
	}

	// mnist@nearest scored here: the examples scores.csv lists, resized
	// by nearest neighbour in this test, with eval's dequantisation
	rows := readScoresCSV(t, run)
	var idx []int
	var got []float64
	for _, r := range rows[1:] {
		if r[0] == "mnist@nearest" {
			i, _ := strconv.Atoi(r[2])
			v, _ := strconv.ParseFloat(r[3], 64)
			idx, got = append(idx, i), append(got, v)
		}
	}
	if len(idx) != n {
		t.Fatalf("%d rows of mnist@nearest, want %d", len(idx), n)
	}
	native, err := data.Load("mnist", "test", data.Options{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	native = native.Subset(idx)
	small := &data.Images{Name: "mnist", N: n, H: 16, W: 16, C: 1, Pix: make([]uint8, n*16*16)}
	for i := range n {
		for y := range 16 {
			for x := range 16 {
				sy, sx := int(math.Floor((float64(y)+0.5)*28/16)), int(math.Floor((float64(x)+0.5)*28/16))
				small.Pix[(i*16+y)*16+x] = native.Pix[(i*28+sy)*28+sx]
			}
		}
	}
	m, err := loadReference(run, rc, "run")
	if err != nil {
		t.Fatal(err)
	}
	want, err := (&ood.LogLikelihood{Model: m, Seed: rc.Train.Seed + 1, ImageNoise: true}).Score(context.Background(), small, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-3*math.Abs(want[i]) {
			t.Fatalf("mnist@nearest example %d: eval %v, scored here %v", idx[i], got[i], want[i])
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestResizeNote checks the note on sets resized differently: a native
// in-distribution set against a cropped and resized OOD set.
func TestResizeNote(t *testing.T) {
	in := &data.Images{Name: "cifar10", Split: "test", Resampling: data.Resampling{StoredWidth: 32, StoredHeight: 32, Width: 32, Height: 32}}
	out := &data.Images{Name: "celeba", Split: "train", Resampling: data.Resampling{StoredWidth: 89, StoredHeight: 109,
		CropWidth: 74, CropHeight: 74, Method: "area", Width: 32, Height: 32}}
	note := resizeNote(in, out)
	for _, want := range []string{"cifar10 test is 32x32", "native", "celeba train is 89x109", "centre crop 74x74", "by area"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q lacks %q", note, want)
		}
	}
	if note := resizeNote(out, out); note != "" {
		t.Errorf("note %q for the same resizing", note)
	}
}

// TestReportResizing checks table1's paragraph: each run's notes once,
// the explanation of NAME@METHOD rows only when there are such rows, and
// nothing when every set was resized alike.
func TestReportResizing(t *testing.T) {
	m := &Metrics{ResizeNotes: []string{"resized differently: X"}, OOD: map[string]map[string]ood.Report{
		"celeba": nil, "celeba@jpeg75": nil, "celeba@nearest": nil, "celeba@nearest@jpeg75": nil}}
	r := &Reproduction{}
	reportResizing(r, []resizeRun{{"realnvp", "cifar10", m}, {"realnvp", "cifar10", m}, {"glow", "mnist", &Metrics{}}})
	s := r.report.String()
	if strings.Count(s, "- realnvp trained on cifar10: resized differently: X.") != 1 || !strings.Contains(s, "NAME@METHOD") {
		t.Errorf("report:\n%s", s)
	}
	m.OOD = map[string]map[string]ood.Report{"celeba": nil, "celeba@jpeg75": nil}
	r = &Reproduction{}
	reportResizing(r, []resizeRun{{"realnvp", "cifar10", m}})
	if s := r.report.String(); !strings.Contains(s, "resized differently: X") || strings.Contains(s, "NAME@METHOD score") {
		t.Errorf("report without variants:\n%s", s)
	}
	r = &Reproduction{}
	reportResizing(r, []resizeRun{{"glow", "mnist", &Metrics{}}})
	if s := r.report.String(); s != "" {
		t.Errorf("report for sets resized alike: %q", s)
	}
}
