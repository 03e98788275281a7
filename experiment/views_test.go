package experiment

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
)

// TestLogDetView checks the per-layer view against flowood eval: for the
// same --limit and --seed, the terms' means add up to the mean
// log-likelihood eval reports for each set; and its files are written.
func TestLogDetView(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	tinyRun(t, run, 6)
	met, err := Evaluate(context.Background(), run, EvalOptions{OOD: []string{"mnist"}, Limit: 30, Seed: 3, Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "view")
	terms, err := LogDetView(context.Background(), run, ViewOptions{OOD: []string{"mnist"}, N: 30, Seed: 3, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	for label, want := range map[string]float64{"fashionmnist test": float64(met.In.MeanLogLik), "mnist test": float64(met.OODSets["mnist"].MeanLogLik)} {
		var sum float64
		for _, tm := range terms[label] {
			sum += tm.Mean
		}
		if len(terms[label]) < 10 || math.Abs(sum-want) > 1e-4*math.Abs(want) {
			t.Errorf("%s: %d terms summing to %v, eval's mean log-likelihood %v", label, len(terms[label]), sum, want)
		}
	}
	for _, f := range []string{"logdet.png", "logdet-diff.png", "logdet.csv", "logdet.npy"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestLatentsView checks the latents view on a tiny run: the arrays have
// the input's shape per column and are finite; column 0 is the image;
// averaging K dequantisations lowers the latent's variance (two averages
// of 16 differ far less than two single latents); and the model's
// inverse of a latent gives back its input.
func TestLatentsView(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	rc := tinyRun(t, run, 8)
	view := func(seed uint64) []float32 {
		out := filepath.Join(t.TempDir(), "v")
		arrs, err := LatentsView(context.Background(), run, ViewOptions{OOD: []string{"mnist"}, Index: []int{3, 5}, Seed: seed, Out: out}, 16)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"latents-fashionmnist-test.png", "latents-mnist-test.npy"} {
			if _, err := os.Stat(filepath.Join(out, f)); err != nil {
				t.Error(err)
			}
		}
		return arrs["fashionmnist test"]
	}
	a, b := view(1), view(2)
	const d = 28 * 28
	if len(a) != 2*4*d {
		t.Fatalf("%d values, want 2 examples x 4 columns x %d", len(a), d)
	}
	x, err := LoadExamples(rc.Data, "", "test")
	if err != nil {
		t.Fatal(err)
	}
	img := make([]float32, d)
	x.Read(img, []int{5}, nil)
	for j, v := range a {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatalf("value %d is %v", j, v)
		}
	}
	for j := range d {
		if a[4*d+j] != img[j] {
			t.Fatalf("column 0 of example 2 is not the image")
		}
	}
	msd := func(col int) float64 {
		var s float64
		for e := range 2 {
			for j := range d {
				k := (e*4+col)*d + j
				s += float64(a[k]-b[k]) * float64(a[k]-b[k])
			}
		}
		return s
	}
	if single, avg := msd(1), msd(2); !(avg < single/4) {
		t.Errorf("two averages of 16 latents differ by %v (mean square), two single latents by %v: want well under a quarter", avg, single)
	}

	m, err := loadReference(run, rc, "run")
	if err != nil {
		t.Fatal(err)
	}
	f := m.(interface {
		Forward(*tensor.Tensor) (*tensor.Tensor, *tensor.Tensor)
		Inverse(*tensor.Tensor) (*tensor.Tensor, *tensor.Tensor)
	})
	m.SetTraining(false)
	u := make([]float32, 4*d)
	x.Read(u, []int{0, 1, 2, 3}, rand.New(rand.NewPCG(1, 1)))
	p := tensor.GradFree()
	defer p.Close()
	z, _ := f.Forward(p.Input(tensor.FromData(u, 4, 28, 28, 1)))
	back, _ := f.Inverse(z)
	for j, v := range back.Data {
		if math.Abs(float64(v-u[j])) > 1e-3 {
			t.Fatalf("inverse of the latent: value %d is %v, the input %v", j, v, u[j])
		}
	}
}

// TestResampleView checks the resampling view on a tiny run: only the
// latent's centre square changes (outside it the latent is the same, bit
// for bit), and the images it gives are finite.
func TestResampleView(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	tinyRun(t, run, 9)
	out := filepath.Join(t.TempDir(), "v")
	before, after, err := ResampleView(context.Background(), run, ViewOptions{OOD: []string{"mnist"}, N: 3, Out: out}, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	for set, b := range before {
		a := after[set]
		if len(a) != 3*784 || len(b) != len(a) {
			t.Fatalf("%s: %d and %d values", set, len(b), len(a))
		}
		changed := 0
		for e := range 3 {
			for i := range 28 {
				for j := range 28 {
					k := e*784 + i*28 + j
					inside := i >= 9 && i < 19 && j >= 9 && j < 19
					if a[k] != b[k] {
						if !inside {
							t.Fatalf("%s: latent value outside the centre square changed at (%d, %d)", set, i, j)
						}
						changed++
					}
				}
			}
		}
		if changed < 3*100*9/10 {
			t.Errorf("%s: %d centre values resampled, want about 300", set, changed)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "resample-mnist-test.npy"))
	if err != nil || len(b) < 3*4*784*4 {
		t.Fatalf("resample-mnist-test.npy: %d bytes, %v", len(b), err)
	}
}

// TestCouplingView checks the coupling view on a tiny RealNVP: every
// coupling is reported once, in forward order, with maps of its layout;
// the first coupling's (a checkerboard on the image) s and t are zero
// where its mask conditions, where its output equals its input.
func TestCouplingView(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	tinyRun(t, run, 10)
	out := filepath.Join(t.TempDir(), "v")
	maps, err := CouplingView(context.Background(), run, ViewOptions{OOD: []string{"mnist"}, Index: []int{4}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	ms := maps["fashionmnist test"][0]
	if len(ms) != 3+3+4 {
		t.Fatalf("%d couplings, want 10", len(ms))
	}
	if ms[0].Name != "1.steps.0" || ms[0].Shape != [3]int{28, 28, 1} {
		t.Errorf("first coupling %q of shape %v", ms[0].Name, ms[0].Shape)
	}
	rc, err := ReadRunConfig(run)
	if err != nil {
		t.Fatal(err)
	}
	m, err := loadReference(run, rc, "run")
	if err != nil {
		t.Fatal(err)
	}
	mask := m.(*realnvp.Model).Couplings[0].Mask
	zeroS := 0
	for j, v := range mask.Data {
		if v == 1 {
			if ms[0].S[j] != 0 || ms[0].T[j] != 0 {
				t.Fatalf("s or t not zero at conditioning position %d", j)
			}
			if ms[0].Input[j] != ms[0].Output[j] {
				t.Fatalf("output differs from input at conditioning position %d", j)
			}
			zeroS++
		}
	}
	if zeroS == 0 {
		t.Fatal("no conditioning positions")
	}
	for _, f := range []string{"coupling-fashionmnist-test-4.png", "coupling-fashionmnist-test-4.npz", "coupling-mnist-test-4.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}
