package tabular

import (
	"testing"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// BenchmarkTrainStep times one training step at App. O's UCI size (the
// paper preset on 43 features, batch 32, AdamW), as flowood bench's
// tabular_train does; for profiling (go test -bench TrainStep
// -cpuprofile).
func BenchmarkTrainStep(b *testing.B) {
	cfg, _ := Preset("paper", 43)
	m := New(cfg, tensor.NewRNG(1))
	params := nn.Params(m)
	opt := train.NewAdamW(1e-3)
	x := tensor.Randn(tensor.NewRNG(2), 32, 43)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range params {
			p.ZeroGrad()
		}
		loss := tensor.Scale(tensor.Mean(m.LogProb(x)), -1)
		tensor.Backward(loss)
		opt.Step(params, 1e-3)
	}
}
