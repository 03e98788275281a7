package realnvp

import (
	"sync"
	"testing"

	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TestTrainBesideScoring trains one model while goroutines score another
// in gradient-free passes (chunked across cores, as evaluation does):
// the training ends with the bits of the same training run alone, and
// every score has the bits of serial scoring. Run with -race it checks
// that the engine keeps no shared mutable state between the two.
func TestTrainBesideScoring(t *testing.T) {
	cfg := Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 8}
	u := tensor.New(2*16+5, 8, 8, 1)
	tensor.NewRNG(21).Uniform(u.Data, 0.05, 0.95)
	scorer := New(cfg, tensor.NewRNG(22))
	flowtest.Perturb(scorer, tensor.NewRNG(23), 0.05)
	scorer.SetTraining(false)
	score := func() []float32 {
		p := tensor.GradFree()
		defer p.Close()
		return append([]float32(nil), scorer.LogProb(p.Input(u)).Data...)
	}
	train := func() []float32 {
		m := New(cfg, tensor.NewRNG(24))
		m.SetTraining(true)
		params := nn.Params(m)
		for step := 0; step < 3; step++ {
			for _, p := range params {
				p.ZeroGrad()
			}
			tensor.Backward(tensor.Scale(tensor.Sum(m.LogProb(u)), -1/float32(u.Shape[0])))
			for _, p := range params {
				for i, g := range p.Grad {
					p.Data[i] -= 1e-3 * g
				}
			}
		}
		var out []float32
		for _, p := range params {
			out = append(out, p.Data...)
		}
		return out
	}
	wantScores := score()
	wantParams := train()

	var wg sync.WaitGroup
	var gotParams []float32
	wg.Add(1)
	go func() {
		defer wg.Done()
		gotParams = train()
	}()
	const scorers = 3
	got := make([][][]float32, scorers)
	for g := range scorers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				got[g] = append(got[g], score())
			}
		}()
	}
	wg.Wait()
	if !flowtest.SameBits(gotParams, wantParams) {
		t.Errorf("training beside scoring ended with other weights than training alone")
	}
	for g := range got {
		for r, s := range got[g] {
			if !flowtest.SameBits(s, wantScores) {
				t.Errorf("scorer %d, round %d: scores differ from serial scoring", g, r)
			}
		}
	}
}
