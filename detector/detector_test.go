package detector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/flowood/flowood/data/pixels"
	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// makeRun writes a run folder for a small RealNVP on h x w x c images of
// dataset, with perturbed weights and running statistics (no training:
// what is tested is scoring), as `flowood train` lays it out.
func makeRun(dir, dataset string, h, w, c int) (*realnvp.Model, error) {
	cfg := realnvp.Config{Height: h, Width: w, Channels: c, Scales: 2, Blocks: 1, Mid: 8}
	rng := tensor.NewRNG(11)
	m := realnvp.New(cfg, rng)
	flowtest.Perturb(m, rng, 0.05)
	for _, nt := range nn.Tensors(m) {
		if strings.HasSuffix(nt.Name, "running_var") {
			for i := range nt.T.Data {
				nt.T.Data[i] = 0.5 + float32(i%3)*0.25
			}
		}
	}
	conf := map[string]any{"version": 1, "model": "realnvp", "preset": "tiny", "realnvp": cfg,
		"data": map[string]any{"name": dataset}}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "checkpoint", "latest"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		return nil, err
	}
	err = checkpoint.WriteSafetensors(filepath.Join(dir, "checkpoint", "latest", checkpoint.ModelFile), nn.Tensors(m), nil)
	return m, err
}

// loadRun makes a run folder (makeRun) and loads its detector.
func loadRun(t *testing.T, dataset string, h, w, c int) (*Detector, string, *realnvp.Model) {
	t.Helper()
	run := t.TempDir()
	m, err := makeRun(run, dataset, h, w, c)
	if err != nil {
		t.Fatal(err)
	}
	det, err := Load(run)
	if err != nil {
		t.Fatal(err)
	}
	return det, run, m
}

// grayImages returns n random h x w grayscale images.
func grayImages(seed uint64, n, h, w int) []image.Image {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]image.Image, n)
	for i := range out {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for j := range g.Pix {
			g.Pix[j] = uint8(r.IntN(256))
		}
		out[i] = g
	}
	return out
}

func Example() {
	run, _ := os.MkdirTemp("", "flowood-run")
	defer os.RemoveAll(run)
	if _, err := makeRun(run, "mnist", 8, 8, 1); err != nil { // a run folder, as `flowood train` writes
		fmt.Println(err)
		return
	}

	det, err := Load(run)
	if err != nil {
		fmt.Println(err)
		return
	}
	imgs := grayImages(1, 3, 8, 8)
	res, err := det.Score(context.Background(), imgs)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, r := range res {
		fmt.Printf("image %d: finite %v, OOD %v\n", i, !math.IsInf(r.LogLikelihood, 0), r.OOD == (r.LogLikelihood < det.Threshold()))
	}
	_, err = det.Score(context.Background(), []image.Image{image.NewGray(image.Rect(0, 0, 3, 3))})
	fmt.Println(err)
	// Output:
	// image 0: finite true, OOD true
	// image 1: finite true, OOD true
	// image 2: finite true, OOD true
	// detector: image 0: image is 3x3, the model scores 8x8 images (mnist)
}

// TestScore checks the scores against the model's own log-likelihood of
// the same dequantised pixels (an independent path: the model's LogProb
// on the whole batch in the default pass), the bits/dim conversion, and
// the OOD flag against the threshold.
func TestScore(t *testing.T) {
	det, run, m := loadRun(t, "mnist", 8, 8, 1)
	m.SetTraining(false)
	if det.Calibrated() || det.Threshold() != 0 || det.Checkpoint() != "latest" {
		t.Errorf("uncalibrated: threshold %v calibrated %v checkpoint %q, want 0 false latest", det.Threshold(), det.Calibrated(), det.Checkpoint())
	}
	imgs := grayImages(2, 11, 8, 8)
	res, err := det.Score(context.Background(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	u := tensor.New(len(imgs), 8, 8, 1)
	for i, img := range imgs {
		px := img.(*image.Gray).Pix
		h := fnvSum(px)
		pixels.Dequantize(u.Data[i*64:(i+1)*64], px, rand.New(rand.NewPCG(h, 64)))
	}
	want := m.Flow.LogProb(u)
	for i, r := range res {
		if d := math.Abs(r.LogLikelihood - float64(want.Data[i])); d > 1e-4*(1+math.Abs(r.LogLikelihood)) {
			t.Errorf("image %d: log-likelihood %v, model on the whole batch %v", i, r.LogLikelihood, want.Data[i])
		}
		bpd := -(r.LogLikelihood/64 - math.Log(256)) / math.Ln2
		if math.Abs(bpd-r.BitsPerDim) > 1e-12 {
			t.Errorf("image %d: %v bits/dim, want %v", i, r.BitsPerDim, bpd)
		}
		if r.OOD != (r.LogLikelihood < 0) {
			t.Errorf("image %d: OOD %v with log-likelihood %v and threshold 0", i, r.OOD, r.LogLikelihood)
		}
	}

	// A calibration in the run folder sets the threshold.
	thr := res[3].LogLikelihood
	b, _ := json.Marshal(map[string]any{"log_likelihood": thr, "tpr": 0.95})
	os.MkdirAll(filepath.Join(run, "eval"), 0o755)
	if err := os.WriteFile(filepath.Join(run, ThresholdFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	det, err = Load(run)
	if err != nil {
		t.Fatal(err)
	}
	if !det.Calibrated() || det.Threshold() != thr {
		t.Fatalf("calibrated threshold %v (%v), want %v", det.Threshold(), det.Calibrated(), thr)
	}
	// A calibration of another checkpoint is not this model's.
	b2, _ := json.Marshal(map[string]any{"log_likelihood": thr, "tpr": 0.95, "checkpoint": "best"})
	os.WriteFile(filepath.Join(run, ThresholdFile), b2, 0o644)
	if other, err := Load(run); err != nil || other.Calibrated() {
		t.Errorf("threshold of checkpoint best applied to latest (calibrated %v, error %v)", other != nil && other.Calibrated(), err)
	}
	res2, _ := det.Score(context.Background(), imgs)
	called := 0
	for i, r := range res2 {
		if r.OOD != (r.LogLikelihood < thr) {
			t.Errorf("image %d: OOD %v with log-likelihood %v and threshold %v", i, r.OOD, r.LogLikelihood, thr)
		}
		if r.OOD {
			called++
		}
	}
	if called == 0 || called == len(imgs) {
		t.Errorf("%d of %d called OOD at a threshold inside their range", called, len(imgs))
	}
}

func fnvSum(b []byte) uint64 {
	var h uint64 = 14695981039346656037
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// TestConcurrentScoring scores the same images from 8 goroutines at once
// and serially, in batches cut differently: every image gets the same
// bits. Run with -race it also checks that scoring writes no shared
// state.
func TestConcurrentScoring(t *testing.T) {
	det, _, _ := loadRun(t, "mnist", 8, 8, 1)
	imgs := grayImages(3, 37, 8, 8)
	serial := make([]Result, 0, len(imgs))
	for _, img := range imgs { // one at a time
		r, err := det.Score(context.Background(), []image.Image{img})
		if err != nil {
			t.Fatal(err)
		}
		serial = append(serial, r...)
	}
	const g = 8
	got := make([][]Result, g)
	errs := make([]error, g)
	var wg sync.WaitGroup
	for k := 0; k < g; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// goroutine k scores all images in batches of k+1
			for lo := 0; lo < len(imgs); lo += k + 1 {
				r, err := det.Score(context.Background(), imgs[lo:min(lo+k+1, len(imgs))])
				if err != nil {
					errs[k] = err
					return
				}
				got[k] = append(got[k], r...)
			}
		}()
	}
	wg.Wait()
	for k := range got {
		if errs[k] != nil {
			t.Fatalf("goroutine %d: %v", k, errs[k])
		}
		for i := range serial {
			if math.Float64bits(got[k][i].LogLikelihood) != math.Float64bits(serial[i].LogLikelihood) {
				t.Errorf("goroutine %d, image %d: %v, serially %v", k, i, got[k][i].LogLikelihood, serial[i].LogLikelihood)
			}
		}
	}
}

// TestScoreErrors checks that bad input is an error, not a panic, and
// that a cancelled context stops scoring.
func TestScoreErrors(t *testing.T) {
	det, _, _ := loadRun(t, "mnist", 8, 8, 1)
	for _, c := range []struct {
		name string
		imgs []image.Image
		want string
	}{
		{"3x3", []image.Image{image.NewGray(image.Rect(0, 0, 3, 3))}, "image 0: image is 3x3"},
		{"nil", append(grayImages(4, 2, 8, 8), nil), "image 2: nil image"},
		{"empty", []image.Image{image.NewGray(image.Rect(0, 0, 0, 0))}, "empty image"},
	} {
		_, err := det.Score(context.Background(), c.imgs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		var ie *InputError
		if !errors.As(err, &ie) || ie.Index != len(c.imgs)-1 {
			t.Errorf("%s: error %v is not an *InputError for image %d", c.name, err, len(c.imgs)-1)
		}
	}
	// RGB images of the right size are converted to grayscale.
	rgb := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range rgb.Pix {
		rgb.Pix[i] = uint8(i * 7)
		if i%4 == 3 {
			rgb.Pix[i] = 255 // opaque
		}
	}
	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			c := rgb.RGBAAt(x, y)
			gray.SetGray(x, y, color.Gray{uint8((299*uint32(c.R) + 587*uint32(c.G) + 114*uint32(c.B) + 500) / 1000)})
		}
	}
	a, err := det.Score(context.Background(), []image.Image{rgb, gray})
	if err != nil {
		t.Fatal(err)
	}
	if !sameResult(a[0], a[1]) {
		t.Errorf("RGB image scored %v, its ITU-R 601 grayscale %v", a[0], a[1])
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := det.Score(ctx, grayImages(5, 40, 8, 8)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v, want context.Canceled", err)
	}

	// Bad run folders.
	if _, err := Load(t.TempDir()); err == nil || !strings.Contains(err.Error(), "is not a run folder") {
		t.Errorf("empty folder: %v", err)
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(`{"version":1,"model":"realnvp","realnvp":{"height":100000,"width":100000,"channels":1}}`), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("huge image shape: %v", err)
	}
	os.WriteFile(filepath.Join(bad, "config.json"), []byte(`{"version":1,"model":"glowworm"}`), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "glowworm") {
		t.Errorf("unknown model: %v", err)
	}
}

// TestCelebACrop checks that a CelebA run's detector crops and resizes
// images of the mirror's size as the dataset loader does: the same pixels
// as pixels.CenterCrop to 74x74 and Resize.
func TestCelebACrop(t *testing.T) {
	det, _, _ := loadRun(t, "celeba", 8, 8, 3)
	face := image.NewRGBA(image.Rect(0, 0, 89, 109))
	r := rand.New(rand.NewPCG(6, 6))
	for i := range face.Pix {
		face.Pix[i] = uint8(r.IntN(256))
		if i%4 == 3 {
			face.Pix[i] = 255
		}
	}
	px, h, w, c := pixels.FromImage(face)
	crop, _ := pixels.CenterCrop(px, h, w, c, 74, 74)
	small, _ := pixels.Resize(crop, 74, 74, 3, 8, 8)
	want := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < 64; i++ {
		copy(want.Pix[4*i:4*i+3], small[3*i:3*i+3])
		want.Pix[4*i+3] = 255
	}
	got, err := det.Score(context.Background(), []image.Image{face, want})
	if err != nil {
		t.Fatal(err)
	}
	if !sameResult(got[0], got[1]) {
		t.Errorf("89x109 face scored %v, its 74x74 crop resized %v", got[0], got[1])
	}
}

// TestImportsLight checks that importing detector pulls in no plotting,
// training loop, dataset loaders or HTTP client.
func TestImportsLight(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "gonum.org/v1/plot"),
			dep == "github.com/flowood/flowood/data",
			dep == "github.com/flowood/flowood/train",
			dep == "github.com/flowood/flowood/experiment",
			dep == "github.com/flowood/flowood/viz",
			dep == "net/http":
			t.Errorf("detector depends on %s", dep)
		}
	}
}

// sameResult reports whether two results are equal, bit for bit, NaN
// fields included.
func sameResult(a, b Result) bool {
	same := func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) }
	if len(a.Scores) != len(b.Scores) || len(a.OODBy) != len(b.OODBy) {
		return false
	}
	for k, v := range a.Scores {
		if w, ok := b.Scores[k]; !ok || !same(v, w) {
			return false
		}
	}
	for k, v := range a.OODBy {
		if w, ok := b.OODBy[k]; !ok || v != w {
			return false
		}
	}
	return same(a.LogLikelihood, b.LogLikelihood) && same(a.BitsPerDim, b.BitsPerDim) && a.OOD == b.OOD &&
		same(a.Complexity, b.Complexity) && same(a.Typicality, b.Typicality)
}

// TestScoresBeyondLikelihood checks Complexity and Typicality against
// their definitions: the PNG of the image as the model sees it, encoded
// here with image/png at best compression, and the training mean that a
// metrics.json gives.
func TestScoresBeyondLikelihood(t *testing.T) {
	_, run, _ := loadRun(t, "mnist", 8, 8, 1)
	imgs := grayImages(9, 3, 8, 8)
	plain, err := Load(run)
	if err != nil {
		t.Fatal(err)
	}
	r0, err := plain.Score(context.Background(), imgs[:1])
	if err != nil || !math.IsNaN(r0[0].Complexity) {
		t.Fatalf("Load without Options.Complexity: complexity %v (%v), want NaN", r0, err)
	}
	det, err := LoadWith(run, Options{Complexity: true})
	if err != nil {
		t.Fatal(err)
	}
	r, err := det.Score(context.Background(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, img := range imgs {
		var b bytes.Buffer
		(&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, img)
		if want := r[i].LogLikelihood + float64(8*b.Len())*math.Ln2; math.Abs(r[i].Complexity-want) > 1e-9*math.Abs(want) {
			t.Errorf("image %d: complexity %v, want %v", i, r[i].Complexity, want)
		}
		if !math.IsNaN(r[i].Typicality) {
			t.Errorf("image %d: typicality %v without a recorded training mean", i, r[i].Typicality)
		}
	}
	if err := os.MkdirAll(filepath.Join(run, "eval"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "eval", "metrics.json"), []byte(`{"train": {"mean_log_likelihood": -12.5}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	det2, err := LoadWith(run, Options{Complexity: true})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := det2.Score(context.Background(), imgs[:1])
	if err != nil {
		t.Fatal(err)
	}
	if want := -math.Abs(r2[0].LogLikelihood + 12.5); r2[0].Typicality != want {
		t.Errorf("typicality %v, want %v", r2[0].Typicality, want)
	}
}
