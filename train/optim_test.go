package train

import (
	"math"
	"testing"

	"github.com/flowood/flowood/tensor"
)

// TestAdamMatchesReference compares three Adam steps with a float64
// transcription of PyTorch's update rule.
func TestAdamMatchesReference(t *testing.T) {
	for _, decoupled := range []bool{false, true} {
		p := tensor.FromData([]float32{0.5, -1, 2}, 3).SetRequiresGrad(true)
		grads := [][]float64{{0.1, -0.2, 0.3}, {0.05, 0.4, -0.1}, {-0.3, 0.1, 0.2}}
		opt := NewAdam(0.01)
		opt.Decoupled = decoupled
		x := []float64{0.5, -1, 2}
		m, v := make([]float64, 3), make([]float64, 3)
		const lr, b1, b2, eps, wd = 0.1, 0.9, 0.999, 1e-8, 0.01
		for step, g := range grads {
			p.Grad = []float32{float32(g[0]), float32(g[1]), float32(g[2])}
			opt.Step([]*tensor.Tensor{p}, lr)
			k := float64(step + 1)
			for j := range x {
				gj := g[j]
				if decoupled {
					x[j] *= 1 - lr*wd
				} else {
					gj += wd * x[j]
				}
				m[j] = b1*m[j] + (1-b1)*gj
				v[j] = b2*v[j] + (1-b2)*gj*gj
				mh, vh := m[j]/(1-math.Pow(b1, k)), v[j]/(1-math.Pow(b2, k))
				x[j] -= lr * mh / (math.Sqrt(vh) + eps)
			}
		}
		for j := range x {
			if d := math.Abs(float64(p.Data[j]) - x[j]); d > 1e-5 {
				t.Errorf("decoupled=%v: θ[%d] = %v, reference %v", decoupled, j, p.Data[j], x[j])
			}
		}
	}
}

func TestRMSpropMatchesReference(t *testing.T) {
	p := tensor.FromData([]float32{1, -2}, 2).SetRequiresGrad(true)
	opt := NewRMSprop(0)
	x, v := []float64{1, -2}, []float64{0, 0}
	for _, g := range [][]float64{{0.5, -0.1}, {0.2, 0.3}} {
		p.Grad = []float32{float32(g[0]), float32(g[1])}
		opt.Step([]*tensor.Tensor{p}, 0.01)
		for j := range x {
			v[j] = 0.99*v[j] + 0.01*g[j]*g[j]
			x[j] -= 0.01 * g[j] / (math.Sqrt(v[j]) + 1e-8)
		}
	}
	for j := range x {
		if d := math.Abs(float64(p.Data[j]) - x[j]); d > 1e-5 {
			t.Errorf("θ[%d] = %v, reference %v", j, p.Data[j], x[j])
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	a := tensor.FromData([]float32{3, 0}, 2)
	b := tensor.FromData([]float32{4}, 1)
	a.Grad, b.Grad = []float32{3, 0}, []float32{4}
	if n := ClipGradNorm([]*tensor.Tensor{a, b}, 1); math.Abs(n-5) > 1e-6 {
		t.Errorf("norm %v, want 5", n)
	}
	if n := ClipGradNorm([]*tensor.Tensor{a, b}, 0); math.Abs(n-1) > 1e-5 {
		t.Errorf("norm after clipping to 1 is %v", n)
	}
}

func TestOptimizerStateRoundTrip(t *testing.T) {
	p := tensor.FromData([]float32{1, 2}, 2).SetRequiresGrad(true)
	p.Grad = []float32{0.1, 0.2}
	a := NewAdam(0)
	a.Step([]*tensor.Tensor{p}, 0.1)
	st, err := a.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	b := NewAdam(0)
	if err := b.UnmarshalState(st, []*tensor.Tensor{p}); err != nil {
		t.Fatal(err)
	}
	q := tensor.FromData([]float32{p.Data[0], p.Data[1]}, 2)
	q.Grad = p.Grad
	a.Step([]*tensor.Tensor{p}, 0.1)
	b.Step([]*tensor.Tensor{q}, 0.1)
	if p.Data[0] != q.Data[0] || p.Data[1] != q.Data[1] {
		t.Errorf("restored Adam diverged: %v vs %v", p.Data, q.Data)
	}
	if err := b.UnmarshalState(st, []*tensor.Tensor{p, q}); err == nil {
		t.Error("state for 1 tensor loaded into 2 parameters")
	}
}

// TestDecayMask checks that Adam (coupled and decoupled) and RMSprop apply
// weight decay only to the parameters their Decay mask selects: a
// parameter outside it moves as with no weight decay at all.
func TestDecayMask(t *testing.T) {
	opts := map[string]func(wd float64) Optimizer{
		"adam":    func(wd float64) Optimizer { return NewAdam(wd) },
		"adamw":   func(wd float64) Optimizer { return NewAdamW(wd) },
		"rmsprop": func(wd float64) Optimizer { return NewRMSprop(wd) },
	}
	for name, mk := range opts {
		run := func(wd float64, mask []bool) [][]float32 {
			ps := []*tensor.Tensor{
				tensor.FromData([]float32{0.5, -1}, 2).SetRequiresGrad(true),
				tensor.FromData([]float32{2, 3}, 2).SetRequiresGrad(true),
			}
			o := mk(wd)
			SetDecay(o, mask)
			for step := 0; step < 3; step++ {
				ps[0].Grad = []float32{0.1, -0.2}
				ps[1].Grad = []float32{0.3, 0.05}
				o.Step(ps, 0.1)
			}
			return [][]float32{ps[0].Data, ps[1].Data}
		}
		none, all, masked := run(0, nil), run(0.5, nil), run(0.5, []bool{true, false})
		for j := range masked[0] {
			if masked[0][j] != all[0][j] {
				t.Errorf("%s: decayed parameter [%d] = %v, want %v as with decay on all", name, j, masked[0][j], all[0][j])
			}
			if masked[1][j] != none[1][j] {
				t.Errorf("%s: parameter outside the mask [%d] = %v, want %v as without decay", name, j, masked[1][j], none[1][j])
			}
		}
		if all[1][0] == none[1][0] {
			t.Errorf("%s: weight decay 0.5 changed nothing", name)
		}
	}
}

// TestClipGradNormGroups clips two groups separately, each to the limit,
// and reports the norm of all gradients before clipping.
func TestClipGradNormGroups(t *testing.T) {
	a := tensor.FromData([]float32{0, 0}, 2)
	b := tensor.FromData([]float32{0}, 1)
	c := tensor.FromData([]float32{0}, 1)
	a.Grad, b.Grad, c.Grad = []float32{3, 0}, []float32{4}, []float32{0.5}
	ps := []*tensor.Tensor{a, b, c}
	if n := ClipGradNormGroups(ps, []bool{true, true, false}, 1); math.Abs(n-math.Sqrt(25.25)) > 1e-6 {
		t.Errorf("norm %v, want sqrt(25.25)", n)
	}
	if n := ClipGradNorm(ps[:2], 0); math.Abs(n-1) > 1e-5 {
		t.Errorf("first group's norm after clipping to 1 is %v", n)
	}
	if c.Grad[0] != 0.5 {
		t.Errorf("second group (norm 0.5 < 1) was clipped to %v", c.Grad[0])
	}
}
