package main

import (
	"bytes"
	"context"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/tensor"
)

// trainTinyRun trains a tiny RealNVP on the embedded FashionMNIST subset
// for 20 steps into a new run folder.
func trainTinyRun(t *testing.T) string {
	t.Helper()
	run := filepath.Join(t.TempDir(), "run")
	var stdout, stderr bytes.Buffer
	err := run_(t, []string{"train", "--preset", "tiny", "--embedded", "--batch", "16", "--train-limit", "320",
		"--test-limit", "16", "--epochs", "1", "--seed", "3", "--out", run}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, stderr.String())
	}
	return run
}

func run_(t *testing.T, args []string, stdout, stderr *bytes.Buffer) error {
	t.Helper()
	return run(context.Background(), args, stdout, stderr)
}

// TestSampleInverse checks, on a trained tiny run in evaluation mode, that
// Inverse(Forward(u)) of a real batch is the batch within float32
// tolerance, and that the samples Flow.Sample draws map back by Forward to
// the latent drawn from the same seed, the whole latent (factored-out
// parts included) drawn once: nothing is resampled inside Inverse.
func TestSampleInverse(t *testing.T) {
	dir := trainTinyRun(t)
	rc, err := experiment.ReadRunConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := experiment.LoadModel(rc, dir, "latest")
	if err != nil {
		t.Fatal(err)
	}
	sm := m.(interface {
		Sample(rng *tensor.RNG, n int, latent []int, temperature float64) *tensor.Tensor
		Forward(x *tensor.Tensor) (z, logDet *tensor.Tensor)
		Inverse(z *tensor.Tensor) (x, logDet *tensor.Tensor)
	})
	te, err := data.LoadEmbedded("fashionmnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	u := tensor.New(n, 28, 28, 1)
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	te.Read(u.Data, idx, tensor.NewRNG(1).Rand)
	p := tensor.GradFree()
	defer p.Close()
	z, ld := sm.Forward(p.Input(u))
	back, ldInv := sm.Inverse(z)
	worst := 0.0
	for i, v := range u.Data {
		worst = math.Max(worst, math.Abs(float64(back.Data[i]-v)))
	}
	t.Logf("real batch: max |Inverse(Forward(u)) - u| = %.3g", worst)
	if !(worst < 1e-4) {
		t.Errorf("Inverse(Forward(u)) differs from u by up to %g", worst)
	}
	for i := 0; i < n; i++ {
		if s := float64(ld.Data[i] + ldInv.Data[i]); !(math.Abs(s) < 1e-2*math.Max(1, math.Abs(float64(ld.Data[i])))) {
			t.Errorf("example %d: forward log-det %v + inverse log-det %v = %v, want 0", i, ld.Data[i], ldInv.Data[i], s)
		}
	}

	// samples: Forward(Sample(seed)) = the latent drawn from seed
	const temp = 0.7
	d := 28 * 28
	x := sm.Sample(tensor.NewRNG(9), n, []int{d}, temp)
	want := make([]float32, n*d)
	tensor.NewRNG(9).Normal(want, 0, temp)
	z2, _ := sm.Forward(p.Input(x))
	worst = 0
	for i, v := range want {
		worst = math.Max(worst, math.Abs(float64(z2.Data[i]-v)))
	}
	t.Logf("samples: max |Forward(Sample) - z| = %.3g", worst)
	if !(worst < 1e-3) {
		t.Errorf("Forward(Sample(z)) differs from the drawn z by up to %g", worst)
	}
	again := sm.Sample(tensor.NewRNG(9), n, []int{d}, temp)
	for i := range x.Data {
		if math.Float32bits(x.Data[i]) != math.Float32bits(again.Data[i]) {
			t.Fatalf("sampling twice with the same seed differs at %d: %v, %v", i, x.Data[i], again.Data[i])
		}
	}
}

// TestSampleCommand runs flowood sample: the same seed gives the same
// file, another seed another; the .npy holds n finite images of the run's
// shape in [0, 1]; the PNG is a grid of the expected size; bad flags are
// refused naming the flag.
func TestSampleCommand(t *testing.T) {
	dir := trainTinyRun(t)
	out := t.TempDir()
	sample := func(args ...string) error {
		var stdout, stderr bytes.Buffer
		return run_(t, append([]string{"sample", dir}, args...), &stdout, &stderr)
	}
	a, b, c := filepath.Join(out, "a.npy"), filepath.Join(out, "b.npy"), filepath.Join(out, "c.npy")
	for _, f := range []struct {
		path, seed string
	}{{a, "4"}, {b, "4"}, {c, "5"}} {
		if err := sample("--n", "12", "--seed", f.seed, "--out", f.path); err != nil {
			t.Fatal(err)
		}
	}
	if !sameFile(t, a, b) {
		t.Error("two samplings with seed 4 differ")
	}
	if sameFile(t, a, c) {
		t.Error("seeds 4 and 5 gave the same samples")
	}
	arr, err := data.ReadNPYFile(a)
	if err != nil {
		t.Fatal(err)
	}
	if arr.DType != "<f4" || len(arr.Shape) != 4 || arr.Shape[0] != 12 || arr.Shape[1] != 28 || arr.Shape[2] != 28 || arr.Shape[3] != 1 {
		t.Fatalf("samples.npy: %s %v, want <f4 [12 28 28 1]", arr.DType, arr.Shape)
	}
	for i, v := range arr.Float64() {
		if !(v >= 0 && v <= 1) || math.Abs(v*255-math.Round(v*255)) > 1e-4 {
			t.Fatalf("value %d is %v, want a pixel level /255 in [0, 1]", i, v)
		}
	}
	pngPath := filepath.Join(out, "s.png")
	if err := sample("--n", "10", "--temperature", "0.5", "--out", pngPath); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	// 10 samples: 4 columns, 3 rows of 28x28 with 2-pixel borders
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w != 4*28+5*2 || h != 3*28+4*2 {
		t.Errorf("grid is %dx%d", w, h)
	}
	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--n", "0", "--out", pngPath}, "--n 0"},
		{[]string{"--temperature", "-1", "--out", pngPath}, "--temperature -1"},
		{[]string{"--out", filepath.Join(out, "x.jpg")}, "x.jpg"},
		{[]string{"--out", filepath.Join(out, "x.csv")}, "write images as .png or .npy"},
		{[]string{"--checkpoint", "first", "--out", pngPath}, `--checkpoint "first"`},
		{nil, "--out FILE is required"},
	} {
		if err := sample(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d: %v: %v, want an error saying %q", i, c.args, err, c.want)
		}
	}
}
