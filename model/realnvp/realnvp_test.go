package realnvp

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TestModelContract runs the flow contract over whole models. Finite
// differences of a whole float32 model are unreliable at ReLU kinks, so
// end-to-end gradients are checked on models with smooth (softplus)
// st-networks, and the ReLU model is checked for invertibility and its
// Jacobian; the ReLU op's own gradient is checked in package tensor, and
// ReLU couplings' gradients in package bijector.
func TestModelContract(t *testing.T) {
	for _, cfg := range []Config{
		{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4},
		{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Activation: "softplus"},
		{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Activation: "softplus", Recompute: "off"},
		{Height: 4, Width: 4, Channels: 3, Scales: 3, Blocks: 1, Mid: 2, Activation: "softplus"},
		// Before weight norm: plain convolutions, zero output convolutions.
		{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Activation: "softplus", WeightNorm: "off", OutInit: "zero"},
		{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Activation: "softplus", OutInit: "zero_bias"},
	} {
		rng := tensor.NewRNG(3)
		m := New(cfg, rng)
		flowtest.Perturb(m, rng, 0.05)
		x := tensor.New(3, cfg.Height, cfg.Width, cfg.Channels)
		rng.Uniform(x.Data, 0, 1)
		m.SetTraining(true)
		p := tensor.GradFree()
		m.Forward(p.Input(x))
		p.Close()
		m.SetTraining(false)
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			// A step of 1e-2: the softplus models are smooth, and float32
			// rounding of their loss (hundreds of nats) over a step of
			// 1e-3 is about 1e-2, as large as some gradients.
			flowtest.CheckBijector(t, m, x, flowtest.Options{GradSamples: 1, SkipGrads: cfg.Activation == "", Step: 1e-2})
		})
	}
}

func TestPresetsBuild(t *testing.T) {
	for _, name := range PresetNames() {
		cfg, err := Preset(name)
		if err != nil {
			t.Fatal(err)
		}
		m := New(cfg, tensor.NewRNG(1))
		want := 3 + 3 + 4 // 2 scales
		if cfg.Layout == "appk" {
			want = 8
		}
		if n := len(m.Couplings); n != want {
			t.Errorf("%s: %d couplings, want %d", name, n, want)
		}
		if len(nn.Params(m)) == 0 {
			t.Errorf("%s: no parameters", name)
		}
	}
	if _, err := Preset("huge"); err == nil {
		t.Error("Preset(huge) did not fail")
	}
}

func TestValidate(t *testing.T) {
	if err := (Config{Height: 6, Width: 6, Scales: 3}).Validate(); err == nil {
		t.Error("6x6 with 3 scales (needs 2 squeezes) validated")
	}
	if err := (Config{Constraint: 1.5}).Validate(); err == nil {
		t.Error("constraint 1.5 validated")
	}
}

// TestLogProbEach checks that evaluation split into per-core chunks
// (Model.LogProb without gradients, in evaluation mode) gives the
// log-likelihoods of the whole batch at once, chunk boundaries and a
// short last chunk included, in a gradient-free pass as the scorers call
// it.
func TestLogProbEach(t *testing.T) {
	cfg := Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4}
	rng := tensor.NewRNG(5)
	m := New(cfg, rng)
	flowtest.Perturb(m, rng, 0.05)
	n := 2*flow.EvalChunk + 7
	u := tensor.New(n, 8, 8, 1)
	rng.Uniform(u.Data, 0, 1)
	m.SetTraining(true)
	p := tensor.GradFree()
	m.Forward(p.Input(u)) // running statistics away from 0 and 1
	p.Close()
	m.SetTraining(false)
	var whole, split []float32
	p = tensor.GradFree()
	whole = append(whole, m.Flow.LogProb(p.Input(u)).Data...)
	p.Close()
	p = tensor.GradFree()
	split = append(split, m.LogProb(p.Input(u)).Data...)
	p.Close()
	if len(split) != n {
		t.Fatalf("%d log-likelihoods for %d examples", len(split), n)
	}
	for i := range whole {
		if d := math.Abs(float64(whole[i] - split[i])); d > 1e-5*math.Abs(float64(whole[i]))+1e-4 {
			t.Errorf("example %d: %v in chunks, %v as one batch", i, split[i], whole[i])
		}
	}
	// With gradients, or batch statistics, the batch is not split: the
	// result has a backward node, or is the whole batch's.
	if lp := m.LogProb(u); !tensor.AnyRequiresGrad(lp) {
		t.Error("LogProb with gradient recording has no backward node")
	}
	m.SetTraining(true)
	p = tensor.GradFree()
	defer p.Close()
	got, want := m.LogProb(p.Input(u)), m.Flow.LogProb(p.Input(u))
	for i := range want.Data {
		if got.Data[i] != want.Data[i] {
			t.Fatalf("with batch statistics, example %d: %v, whole batch %v", i, got.Data[i], want.Data[i])
		}
	}
}

// TestConfigJSON checks the defaults of the reference options and that
// JSON written before they existed (no weight_norm, out_init, decay)
// rebuilds the model of then: plain convolutions named "weight", zero
// output convolutions, weight decay on every parameter.
func TestConfigJSON(t *testing.T) {
	def := Config{}.WithDefaults()
	if def.WeightNorm != "on" || def.OutInit != "pytorch" || def.Decay != "gains" {
		t.Fatalf("defaults: weight_norm %q out_init %q decay %q, want on pytorch gains", def.WeightNorm, def.OutInit, def.Decay)
	}
	var old Config
	if err := json.Unmarshal([]byte(`{"height":28,"width":28,"channels":1,"scales":2,"blocks":1,"mid":4,"constraint":0.9,"recompute":"off","activation":"relu"}`), &old); err != nil {
		t.Fatal(err)
	}
	if old.WeightNorm != "off" || old.OutInit != "zero" || old.Decay != "all" || old.Mid != 4 || old.Recompute != "off" {
		t.Fatalf("old JSON decoded as %+v", old)
	}
	m := New(old, tensor.NewRNG(1))
	for _, nt := range nn.Tensors(m) {
		if strings.HasSuffix(nt.Name, "weight_g") || strings.HasSuffix(nt.Name, "weight_v") {
			t.Fatalf("old config builds weight-normalised %s", nt.Name)
		}
		if strings.HasSuffix(nt.Name, "st_net.out_conv.weight") {
			for _, v := range nt.T.Data {
				if v != 0 {
					t.Fatalf("old config: %s not zero", nt.Name)
				}
			}
		}
		if nt.Trainable && !m.Decays(nt.Name) {
			t.Fatalf("old config: no weight decay on %s", nt.Name)
		}
	}
	// Written with every field, a configuration comes back unchanged.
	for _, c := range []Config{def, old.WithDefaults()} {
		b, _ := json.Marshal(c)
		var back Config
		if err := json.Unmarshal(b, &back); err != nil || back != c {
			t.Errorf("%s decoded as %+v (%v)", b, back, err)
		}
	}
	for _, bad := range []Config{{WeightNorm: "yes"}, {OutInit: "ones"}, {Decay: "none"}} {
		if bad.Validate() == nil {
			t.Errorf("%+v validated", bad)
		}
	}
}

// TestDecays checks which parameters the default model decays: exactly
// the weight-norm gains and the couplings' scales, one gain per
// convolution.
func TestDecays(t *testing.T) {
	m := New(Config{Blocks: 1, Mid: 4}, tensor.NewRNG(1))
	var gains, scales, convs int
	for _, nt := range nn.Tensors(m) {
		if strings.HasSuffix(nt.Name, ".weight_v") {
			convs++
		}
		switch {
		case strings.HasSuffix(nt.Name, ".weight_g"):
			gains++
		case strings.HasSuffix(nt.Name, ".scale"):
			scales++
		}
		want := strings.HasSuffix(nt.Name, ".weight_g") || strings.HasSuffix(nt.Name, ".scale")
		if nt.Trainable && m.Decays(nt.Name) != want {
			t.Errorf("Decays(%s) = %v", nt.Name, !want)
		}
	}
	// 10 couplings, each with in_conv, in_skip, 2 block convs, a skip and out_conv.
	if convs != 10*6 || gains != convs || scales != 10 {
		t.Errorf("%d weight-normalised convolutions, %d gains, %d scales; want 60, 60, 10", convs, gains, scales)
	}
}
