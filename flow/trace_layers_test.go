package flow_test

import (
	"math"
	"strings"
	"testing"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
)

// TestTrace checks Flow.Trace on a RealNVP, with and without activation
// recomputation: the prior term plus every layer's log-det is the
// model's log-likelihood, each layer is named by its checkpoint path and
// reported once, and the latent norm is that of the latent Forward gives.
func TestTrace(t *testing.T) {
	for _, rec := range []string{"off", "on"} {
		cfg := realnvp.Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Recompute: rec}
		rng := tensor.NewRNG(3)
		m := realnvp.New(cfg, rng)
		flowtest.Perturb(m, rng, 0.05)
		m.SetTraining(false)
		x := tensor.New(5, 8, 8, 1)
		rng.Uniform(x.Data, 0.02, 0.98)
		tr := m.Trace(x)

		p := tensor.GradFree()
		lp := m.Flow.LogProb(p.Input(x))
		z, _ := m.Forward(p.Input(x))
		// logit, then per scale: 3 checkerboard couplings, squeeze, 3 channel
		// couplings; the last scale 4 couplings.
		if want := 1 + 3 + 1 + 3 + 4; len(tr.Layers) != want {
			t.Errorf("recompute %s: %d layers, want %d", rec, len(tr.Layers), want)
		}
		seen := map[string]bool{}
		for _, l := range tr.Layers {
			if seen[l.Name] {
				t.Errorf("layer %q reported twice", l.Name)
			}
			seen[l.Name] = true
		}
		if !seen["1.steps.0"] || !seen["1.next.steps.3"] || !seen["0"] {
			t.Errorf("layer names %v lack 0 (logit), 1.steps.0, 1.next.steps.3", seen)
		}
		for i := range 5 {
			sum := tr.Prior[i]
			for _, l := range tr.Layers {
				sum += l.LogDet[i]
			}
			if math.Abs(sum-float64(lp.Data[i])) > 1e-5*math.Abs(sum) || math.Abs(tr.LogProb[i]-sum) > 1e-12*math.Abs(sum) {
				t.Errorf("recompute %s example %d: prior + log-dets %v, LogProb %v, Trace.LogProb %v", rec, i, sum, lp.Data[i], tr.LogProb[i])
			}
			var s float64
			d := len(z.Data) / 5
			for _, v := range z.Data[i*d : (i+1)*d] {
				s += float64(v) * float64(v)
			}
			if math.Abs(tr.LatentNorm[i]-math.Sqrt(s)) > 1e-9*math.Sqrt(s) {
				t.Errorf("latent norm %v, want %v", tr.LatentNorm[i], math.Sqrt(s))
			}
		}
		// the paper's RealNVP layout (Sec. 3 of Dinh et al.): what each
		// layer is, in forward order
		cb, ch := "affine coupling, checkerboard mask", "affine coupling, channel mask"
		kinds := []string{"Logit", cb, cb, cb, "Squeeze", ch, ch, ch, cb, cb, cb, cb}
		for i, l := range tr.Layers {
			if i < len(kinds) && l.Kind != kinds[i] {
				t.Errorf("recompute %s: layer %d (%s) is %q, want %q", rec, i, l.Name, l.Kind, kinds[i])
			}
		}
		for _, bad := range []string{"1.steps.99", "1.nope", "x", "0.0"} {
			if b := flow.Find(m.Flow.Bijector, bad); b != nil {
				t.Errorf("Find(%q) = %T, want nil", bad, b)
			}
		}
		for _, l := range tr.Layers {
			if strings.Contains(l.Name, "steps.3") && l.Name != "1.next.steps.3" && l.Name != "1.steps.3" {
				t.Errorf("unexpected layer %q", l.Name)
			}
		}
		p.Close()
	}
}
