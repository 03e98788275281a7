package flow_test

import (
	"context"
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

// TestTraceChunks checks Flow.TraceChunks against Trace of the whole
// batch (equal up to the kernels' float32 rounding across batch sizes),
// against LogProbChunks (the same chunks: log p equal up to the float32
// vs float64 sum), and that an example's trace has the same bits in
// batches cut differently.
func TestTraceChunks(t *testing.T) {
	cfg := realnvp.Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4}
	rng := tensor.NewRNG(5)
	m := realnvp.New(cfg, rng)
	flowtest.Perturb(m, rng, 0.05)
	m.SetTraining(false)
	const n = 11
	x := tensor.New(n, 8, 8, 1)
	rng.Uniform(x.Data, 0.02, 0.98)
	whole := m.Trace(x)
	p := tensor.NewPass(tensor.PassOptions{CacheWeights: true})
	defer p.Close()
	ctx := context.Background()
	tr, err := m.TraceChunks(ctx, p, x.Data, x.Shape, 0)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := flow.LogProbChunks(ctx, p, m.Flow.LogProb, x.Data, x.Shape, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.LogProb) != n || len(tr.Layers) != len(whole.Layers) {
		t.Fatalf("%d examples and %d layers, want %d and %d", len(tr.LogProb), len(tr.Layers), n, len(whole.Layers))
	}
	near := func(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }
	for i := range n {
		if !near(tr.LogProb[i], whole.LogProb[i], 1e-5) || !near(tr.Prior[i], whole.Prior[i], 1e-5) ||
			!near(tr.LatentNorm[i], whole.LatentNorm[i], 1e-5) || !near(tr.LogProb[i], float64(lp[i]), 1e-5) {
			t.Errorf("example %d: chunked log p %v prior %v norm %v; whole batch %v %v %v; LogProbChunks %v", i,
				tr.LogProb[i], tr.Prior[i], tr.LatentNorm[i], whole.LogProb[i], whole.Prior[i], whole.LatentNorm[i], lp[i])
		}
		for k, l := range tr.Layers {
			if l.Name != whole.Layers[k].Name || l.Kind != whole.Layers[k].Kind || !near(l.LogDet[i], whole.Layers[k].LogDet[i], 1e-5) {
				t.Errorf("example %d layer %s: %v, whole batch %s %v", i, l.Name, l.LogDet[i], whole.Layers[k].Name, whole.Layers[k].LogDet[i])
			}
		}
	}
	// Examples 3..10 alone: the same bits.
	part, err := m.TraceChunks(ctx, p, x.Data[3*64:], append([]int{n - 3}, x.Shape[1:]...), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n - 3 {
		if math.Float64bits(part.LogProb[i]) != math.Float64bits(tr.LogProb[3+i]) {
			t.Errorf("example %d: %v in another batch, %v", 3+i, part.LogProb[i], tr.LogProb[3+i])
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := m.TraceChunks(cctx, p, x.Data, x.Shape, 0); err == nil {
		t.Error("cancelled context: no error")
	}
}
