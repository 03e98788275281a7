package detector

import (
	"context"
	"encoding/json"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowood/flowood/data/pixels"
	"github.com/flowood/flowood/internal/jsonfloat"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// BenchmarkScore times Score of 64 random 28x28 images on a small
// RealNVP (makeRun), with loglik alone and with each other score added:
// the difference is the score's cost (docs/serve.md), in wall time
// (img/s) and in CPU time per image. The run gets a
// calibration as flowood eval writes it: two reference runs (background
// and general are the first, the ensemble both: waic evaluates three
// models) and DoSE densities fitted on the statistics of 2000 images
// (ood.MaxDoSEReference, what an evaluation of 2000 or more test images
// keeps).
func BenchmarkScore(b *testing.B) {
	root := b.TempDir()
	run := filepath.Join(root, "run")
	makeBenchRun(b, root)
	imgs := grayImages(1, 64, 28, 28)
	for _, scores := range [][]string{{"loglik"}, {"ic"}, {"ic_lzma"}, {"typicality"}, {"lr"}, {"general"}, {"waic"}, {"dose"}} {
		b.Run("scores="+scores[0], func(b *testing.B) {
			det, err := LoadWith(run, Options{Scores: scores})
			if err != nil {
				b.Fatal(err)
			}
			cpu0 := cpuSeconds()
			for b.Loop() {
				if _, err := det.Score(context.Background(), imgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "img/s")
			// CPU time is less disturbed than wall time by other
			// processes on a shared machine.
			b.ReportMetric((cpuSeconds()-cpu0)*1e3/float64(64*b.N), "cpu-ms/img")
		})
	}
}

// makeBenchRun writes root/run, root/ref1 and root/ref2 (makeRun) and
// the run's eval/thresholds.json and eval/dose.json.
func makeBenchRun(b *testing.B, root string) {
	run := filepath.Join(root, "run")
	m, err := makeRun(run, "mnist", 28, 28, 1)
	if err != nil {
		b.Fatal(err)
	}
	var refs []runfile.Reference
	for _, name := range []string{"ref1", "ref2"} {
		if _, err := makeRun(filepath.Join(root, name), "mnist", 28, 28, 1); err != nil {
			b.Fatal(err)
		}
		r, err := runfile.NewReference(run, filepath.Join(root, name), "reference", "latest", checkpoint.ModelFile)
		if err != nil {
			b.Fatal(err)
		}
		refs = append(refs, r)
	}
	// DoSE on the statistics of 2000 random images.
	m.SetTraining(false)
	const n = 2000
	u := make([]float32, n*784)
	for i, img := range grayImages(2, n, 28, 28) {
		px := img.(*image.Gray).Pix
		pixels.Dequantize(u[i*784:(i+1)*784], px, pixels.ImageNoise(px))
	}
	p := tensor.NewPass(tensor.PassOptions{CacheWeights: true})
	tr, err := m.TraceChunks(context.Background(), p, u, []int{n, 28, 28, 1}, 0)
	p.Close()
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"log_p", "prior", "latent_norm"}
	stats := [][]float64{tr.LogProb, tr.Prior, tr.LatentNorm}
	for _, l := range tr.Layers {
		names, stats = append(names, "logdet:"+l.Name), append(stats, l.LogDet)
	}
	dose, err := ood.FitDoSE(names, stats, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		b.Fatal(err)
	}
	j, _ := json.Marshal(dose)
	os.MkdirAll(filepath.Join(run, "eval"), 0o755)
	if err := os.WriteFile(filepath.Join(run, "eval", "dose.json"), j, 0o644); err != nil {
		b.Fatal(err)
	}
	sum, err := runfile.FileSHA256(filepath.Join(run, "checkpoint", "latest", checkpoint.ModelFile))
	if err != nil {
		b.Fatal(err)
	}
	mean := 0.0
	for _, v := range tr.LogProb {
		mean += v / n
	}
	tm := runfile.Calibration{Version: runfile.CalibrationVersion, TPR: 0.95, Checkpoint: "latest", ModelSHA256: sum}
	for _, name := range ScoreNames {
		sc := runfile.ScoreCalibration{Name: name}
		switch name {
		case "typicality":
			m := jsonfloat.Float(mean)
			sc.TrainMean = &m
		case "lr", "general":
			sc.References = refs[:1]
		case "waic":
			sc.References = refs
		case "dose":
			sc.State = "eval/dose.json"
		}
		tm.Scores = append(tm.Scores, sc)
	}
	if err := runfile.WriteCalibration(run, tm); err != nil {
		b.Fatal(err)
	}
}
