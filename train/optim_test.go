package train

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
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

// paramModule is a module of two parameters, for checkpoint round trips.
type paramModule struct{ w, b *tensor.Tensor }

func (p paramModule) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	fn("w", p.w, true)
	fn("b", p.b, true)
}

func newParamModule() paramModule {
	w := tensor.FromData([]float32{1, 2, -3, 0.5, 0.25, 7}, 2, 3).SetRequiresGrad(true)
	b := tensor.FromData([]float32{0.1}, 1).SetRequiresGrad(true)
	return paramModule{w, b}
}

// setGrads sets gradients that depend on the step and the parameter's values.
func setGrads(p paramModule, step int) {
	for _, t := range []*tensor.Tensor{p.w, p.b} {
		t.Grad = make([]float32, len(t.Data))
		for j := range t.Grad {
			t.Grad[j] = float32(step+j)*0.01 - 0.5*t.Data[j]
		}
	}
}

// TestOptimizerCheckpoint steps each optimiser twice, saves it in a
// checkpoint (optimizer.safetensors), restores it into a new optimiser and
// checks that three more steps of both give bit-identical parameters; and
// the same from the version-1 JSON form of the moments.
func TestOptimizerCheckpoint(t *testing.T) {
	for _, name := range []string{"adam", "adamw", "rmsprop"} {
		for _, legacy := range []bool{false, true} {
			if legacy && name == "rmsprop" {
				continue
			}
			a, _ := NewOptimizer(name, 0.01)
			pa := newParamModule()
			params := nn.Params(pa)
			for step := range 2 {
				setGrads(pa, step)
				a.Step(params, 0.1)
			}
			dir := filepath.Join(t.TempDir(), "latest")
			st := checkpoint.State{RNG: []byte{}}
			var err error
			st.Optimizer, st.OptimizerTensors, err = optimizerCheckpoint(a.State(), trainable(pa))
			if err != nil {
				t.Fatal(err)
			}
			if legacy {
				// what the code before format version 2 wrote
				s := a.State()
				st.Optimizer, _ = json.Marshal(map[string]any{"kind": s.Kind, "step": s.Step, "m": s.Buffers["m"], "v": s.Buffers["v"]})
				st.OptimizerTensors = nil
			}
			if err := checkpoint.Save(dir, pa, st); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, checkpoint.OptimizerFile)); err == nil == legacy {
				t.Errorf("%s legacy=%v: optimizer file exists: %v", name, legacy, err == nil)
			}
			b, _ := NewOptimizer(name, 0.01)
			pb := newParamModule()
			loaded, err := checkpoint.LoadTraining(dir, pb)
			if err != nil {
				t.Fatal(err)
			}
			s, err := restoreOptimizer(loaded, trainable(pb), dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.SetState(s, nn.Params(pb)); err != nil {
				t.Fatal(err)
			}
			for step := 2; step < 5; step++ {
				setGrads(pa, step)
				setGrads(pb, step)
				a.Step(params, 0.1)
				b.Step(nn.Params(pb), 0.1)
			}
			for i, x := range append(slices.Clone(pa.w.Data), pa.b.Data...) {
				y := append(slices.Clone(pb.w.Data), pb.b.Data...)[i]
				if math.Float32bits(x) != math.Float32bits(y) {
					t.Errorf("%s legacy=%v: value %d: %v continuing, %v restored", name, legacy, i, x, y)
				}
			}
		}
	}
}

// TestOptimizerCheckpointErrors checks that optimiser tensors that do not
// fit the model give errors naming the file and the tensor.
func TestOptimizerCheckpointErrors(t *testing.T) {
	pa := newParamModule()
	a := NewAdam(0)
	setGrads(pa, 0)
	a.Step(nn.Params(pa), 0.1)
	raw, tensors, err := optimizerCheckpoint(a.State(), trainable(pa))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":"adam","step":1,"buffers":["m","v"]}`; string(raw) != want {
		t.Errorf("optimizer JSON %s, want %s", raw, want)
	}
	if len(tensors) != 4 || tensors["m.w"] == nil || !slices.Equal(tensors["v.w"].Shape, []int{2, 3}) {
		t.Errorf("optimizer tensors %v", tensors)
	}
	for i, c := range []struct {
		edit func(map[string]*tensor.Tensor) json.RawMessage
		want string
	}{
		{func(m map[string]*tensor.Tensor) json.RawMessage { delete(m, "v.b"); return raw }, "missing"},
		{func(m map[string]*tensor.Tensor) json.RawMessage { m["x.w"] = m["m.w"]; return raw }, "x.w"},
		{func(m map[string]*tensor.Tensor) json.RawMessage { m["m.w"] = tensor.New(3, 2); return raw }, "m.w"},
		{func(m map[string]*tensor.Tensor) json.RawMessage {
			return json.RawMessage(`{"kind":"rmsprop","buffers":["m","v"]}`)
		}, `"rmsprop"`},
		{func(m map[string]*tensor.Tensor) json.RawMessage { return json.RawMessage(`{"kind":"adam","m":[[1]]}`) }, "JSON and as tensors"},
	} {
		m := maps.Clone(tensors)
		st := checkpoint.State{Optimizer: c.edit(m), OptimizerTensors: m}
		s, err := restoreOptimizer(st, trainable(pa), "ck")
		if err == nil {
			err = NewAdam(0).SetState(s, nn.Params(pa))
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d: error %v, want one containing %q", i, err, c.want)
		}
	}
	// version 1: moments of the wrong length
	st := checkpoint.State{Optimizer: json.RawMessage(`{"kind":"adam","step":1,"m":[[1,2],[3]],"v":[[1,2],[3]]}`)}
	s, err := restoreOptimizer(st, trainable(pa), "ck")
	if err == nil {
		err = NewAdam(0).SetState(s, nn.Params(pa))
	}
	if err == nil || !strings.Contains(err.Error(), "values") {
		t.Errorf("short version-1 moments: %v", err)
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
