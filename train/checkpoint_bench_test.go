package train

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// BenchmarkPaperCheckpoint saves and loads a checkpoint of the paper
// preset (weights and Adam moments) and reports its size on disk in MB,
// with the moments of one Adam step on zero gradients ("zero": after one
// real step of a fresh model, whose output convolutions start at zero,
// 4002 of 14.7M moments are non-zero) and on random ones ("dense": every
// moment non-zero, as after a few steps). Run with
//
//	go test ./train -run '^$' -bench PaperCheckpoint -benchtime 3x -benchmem
func BenchmarkPaperCheckpoint(b *testing.B) {
	for _, dense := range []bool{false, true} {
		name := "zero"
		if dense {
			name = "dense"
		}
		b.Run(name, func(b *testing.B) { benchPaperCheckpoint(b, dense) })
	}
}

func benchPaperCheckpoint(b *testing.B, dense bool) {
	cfg, err := realnvp.Preset("paper")
	if err != nil {
		b.Fatal(err)
	}
	m := realnvp.New(cfg, tensor.NewRNG(1))
	params := nn.Params(m)
	rng := tensor.NewRNG(2)
	for _, p := range params {
		p.Grad = make([]float32, len(p.Data))
		if dense {
			rng.Normal(p.Grad, 0, 1e-3)
		}
	}
	opt := NewAdam(0)
	opt.Step(params, 5e-5)
	dir := filepath.Join(b.TempDir(), "latest")
	save := func() {
		raw, tensors, err := optimizerCheckpoint(opt.State(), trainable(m))
		if err != nil {
			b.Fatal(err)
		}
		rs, _ := rng.MarshalBinary()
		if err := checkpoint.Save(dir, m, checkpoint.State{Step: 1, RNG: rs, Optimizer: raw, OptimizerTensors: tensors}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("save", func(b *testing.B) {
		for b.Loop() {
			save()
		}
		b.ReportMetric(dirMB(b, dir), "MB")
	})
	b.Run("load", func(b *testing.B) {
		save()
		for b.Loop() {
			if _, err := resumeFrom(dir, m, NewAdam(0), tensor.NewRNG(0)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// dirMB returns the size of the files in dir in MB (10^6 bytes).
func dirMB(b *testing.B, dir string) float64 {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			b.Fatal(err)
		}
		n += fi.Size()
	}
	return float64(n) / 1e6
}

// BenchmarkPaperScore scores n embedded FashionMNIST test images with a
// paper-preset model, as flowood eval does (ood.LogLikelihood, chunks of
// flow.EvalChunk images); with -benchmem, B/op is the memory one call
// allocates on top of the model. One chunk (8 images) transforms each
// Winograd kernel for itself; several chunks share the transforms of all
// of them, held for the whole call (tensor.CacheWeightTransforms). Run
// each size in a process of its own (pooled buffers stay between runs):
//
//	for n in 8 32 256; do go test ./train -run '^$' -bench "PaperScore/n=$n\$" -benchtime 1x -benchmem; done
func BenchmarkPaperScore(b *testing.B) {
	cfg, err := realnvp.Preset("paper")
	if err != nil {
		b.Fatal(err)
	}
	m := realnvp.New(cfg, tensor.NewRNG(1))
	im, err := data.LoadEmbedded("fashionmnist", "test")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{8, 32, 256} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := (&ood.LogLikelihood{Model: m}).Score(context.Background(), im, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
