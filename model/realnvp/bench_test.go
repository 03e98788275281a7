package realnvp

import (
	"fmt"
	"math"
	"testing"

	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// BenchmarkTrainStep times one forward and backward pass (no optimiser) of
// each preset on a batch of 28x28 images; it reports img/s.
func BenchmarkTrainStep(b *testing.B) {
	for _, name := range []string{"tiny", "cpu"} {
		for _, rc := range []string{"on", "off"} {
			cfg, _ := Preset(name)
			cfg.Recompute = rc
			for _, batch := range []int{64} {
				b.Run(fmt.Sprintf("%s/recompute-%s/batch%d", name, rc, batch), func(b *testing.B) {
					rng := tensor.NewRNG(1)
					m := New(cfg, rng)
					m.SetTraining(true)
					u := tensor.New(batch, 28, 28, 1)
					rng.Uniform(u.Data, 0, 1)
					params := nn.Params(m)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						for _, p := range params {
							p.ZeroGrad()
						}
						loss := tensor.Scale(tensor.Mean(m.LogProb(u)), -1)
						if math.IsNaN(float64(loss.Data[0])) {
							b.Fatal("NaN loss")
						}
						tensor.Backward(loss)
					}
					b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
				})
			}
		}
	}
}

// BenchmarkEval times log-likelihood evaluation without gradients.
func BenchmarkEval(b *testing.B) {
	cfg, _ := Preset("cpu")
	rng := tensor.NewRNG(1)
	m := New(cfg, rng)
	const batch = 256
	u := tensor.New(batch, 28, 28, 1)
	rng.Uniform(u.Data, 0, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := tensor.GradFree()
		m.LogProb(p.Input(u))
		p.Close()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
}

// BenchmarkTrainStepParallel is BenchmarkTrainStep's cpu preset trained
// data-parallel (train.Parallel), a replica per core.
func BenchmarkTrainStepParallel(b *testing.B) {
	cfg, _ := Preset("cpu")
	const batch = 64
	rng := tensor.NewRNG(1)
	m := New(cfg, rng)
	g := tensor.NewGroup(kernels.Workers())
	reps, err := m.Replicas(g)
	if err != nil {
		b.Fatal(err)
	}
	p, err := train.NewParallel(m, reps, g)
	if err != nil {
		b.Fatal(err)
	}
	u := tensor.New(batch, 28, 28, 1)
	rng.Uniform(u.Data, 0, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if lp := p.Backward(u, -1); math.IsNaN(lp) {
			b.Fatal("NaN loss")
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
}
