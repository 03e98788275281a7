package glow

import (
	"fmt"
	"math"
	"testing"

	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// BenchmarkTrainStep times one training step's gradient (forward and
// backward, data-parallel on several cores as flowood train does) of the
// tiny and cpu presets and some cpu-sized variants, batch 64; it reports
// img/s.
func BenchmarkTrainStep(b *testing.B) {
	cpu, _ := Preset("cpu")
	variants := map[string]Config{"cpu": cpu}
	for _, v := range []struct{ steps, hidden, layers int }{{4, 16, 1}, {8, 16, 1}, {4, 32, 1}, {8, 32, 1}, {4, 16, 3}} {
		c := cpu
		c.Steps, c.Hidden, c.Layers = v.steps, v.hidden, v.layers
		variants[fmt.Sprintf("k%d-h%d-l%d", v.steps, v.hidden, v.layers)] = c
	}
	for name, cfg := range variants {
		b.Run(name, func(b *testing.B) {
			const batch = 64
			rng := tensor.NewRNG(1)
			m := New(cfg, rng)
			m.SetTraining(true)
			u := tensor.New(batch, 28, 28, 1)
			rng.Uniform(u.Data, 0, 1)
			params := nn.Params(m)
			var par *train.Parallel
			if k := kernels.Workers(); k > 1 {
				g := tensor.NewGroup(k)
				reps, err := m.Replicas(g)
				if err != nil {
					b.Fatal(err)
				}
				if par, err = train.NewParallel(m, reps, g); err != nil {
					b.Fatal(err)
				}
			}
			step := func() {
				if par != nil {
					if v := par.Backward(u, -1); math.IsNaN(v) {
						b.Fatal("NaN loss")
					}
					return
				}
				for _, p := range params {
					p.ZeroGrad()
				}
				loss := tensor.Scale(tensor.Mean(m.LogProb(u)), -1)
				tensor.Backward(loss)
			}
			step() // actnorm initialisation
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step()
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
