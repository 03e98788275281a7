package tabular

import (
	"math"
	"testing"

	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TestCouplingContract runs the bijector contract on the model's
// couplings: the MLP st-network with ReLU, both masks, odd D.
func TestCouplingContract(t *testing.T) {
	rng := tensor.NewRNG(5)
	for _, reverse := range []bool{false, true} {
		id, ch := bijector.TabularSizes(5, reverse)
		c := bijector.NewTabularCoupling(5, reverse, NewMLP(rng, id, 6, 1, 2*ch, false))
		flowtest.Perturb(c, rng, 0.2)
		flowtest.CheckBijector(t, c, tensor.Randn(rng, 3, 5), flowtest.Options{})
	}
}

// TestModelContract runs the contract on a whole model (a chain of
// couplings).
func TestModelContract(t *testing.T) {
	m := New(Config{Features: 5, Couplings: 4, Hidden: 6}, tensor.NewRNG(6))
	flowtest.CheckBijector(t, m.Flow.Bijector, tensor.Randn(tensor.NewRNG(7), 3, 5), flowtest.Options{})
}

// refLogProb computes log p(x) of one example in float64 from the
// model's parameters, independently of the engine: the reference code's
// coupling (masked input, s = scale·tanh(s_raw), z = (x + t)·exp(s)) with
// the network restricted to the conditioning features.
func refLogProb(m *Model, x []float64) float64 {
	d := len(x)
	z := append([]float64(nil), x...)
	var logDet float64
	for i, c := range m.Couplings {
		k := d / 2
		var idIdx, chIdx []int
		for j := 0; j < d; j++ {
			if (j < k) == (i%2 == 0) {
				idIdx = append(idIdx, j)
			} else {
				chIdx = append(chIdx, j)
			}
		}
		h := make([]float64, len(idIdx))
		for a, j := range idIdx {
			h[a] = z[j]
		}
		layers := c.Net.(*MLP).Layers
		for li, l := range layers {
			in, out := l.W.Shape[0], l.W.Shape[1]
			y := make([]float64, out)
			for o := 0; o < out; o++ {
				s := float64(l.B.Data[o])
				for a := 0; a < in; a++ {
					s += h[a] * float64(l.W.Data[a*out+o])
				}
				if li < len(layers)-1 {
					s = math.Max(s, 0)
				}
				y[o] = s
			}
			h = y
		}
		nc := len(chIdx)
		for a, j := range chIdx {
			s := float64(c.Scale.Data[a]) * math.Tanh(h[a])
			z[j] = (z[j] + h[nc+a]) * math.Exp(s)
			logDet += s
		}
	}
	lp := logDet
	for _, v := range z {
		lp += -0.5*v*v - 0.5*math.Log(2*math.Pi)
	}
	return lp
}

// TestLogProbReference compares LogProb, recorded, gradient-free on a
// small batch and gradient-free on a batch evaluated in chunks, with the
// float64 reference.
func TestLogProbReference(t *testing.T) {
	const d, n = 7, 150 // n > evalChunk: LogProbEach
	m := New(Config{Features: d, Couplings: 3, Hidden: 8, Layers: 2}, tensor.NewRNG(8))
	flowtest.Perturb(m, tensor.NewRNG(9), 0.1)
	x := tensor.Randn(tensor.NewRNG(10), n, d)
	want := make([]float64, n)
	for e := range want {
		row := make([]float64, d)
		for j := range row {
			row[j] = float64(x.Data[e*d+j])
		}
		want[e] = refLogProb(m, row)
	}
	check := func(name string, got []float32) {
		t.Helper()
		for e := range got {
			if diff := math.Abs(float64(got[e]) - want[e]); diff > 1e-4*math.Max(1, math.Abs(want[e])) {
				t.Errorf("%s: example %d: log p %g, float64 reference %g", name, e, got[e], want[e])
				return
			}
		}
	}
	check("recorded", m.LogProb(x.Clone().SetRequiresGrad(true)).Data)
	p := tensor.GradFree()
	check("gradient-free chunked", m.LogProb(p.Input(x)).Data)
	p.Close()
	p = tensor.GradFree()
	small := tensor.FromData(x.Data[:10*d], 10, d)
	check("gradient-free small", m.LogProb(p.Input(small)).Data)
	p.Close()
}

func TestConfig(t *testing.T) {
	c, err := Preset("paper", 43)
	if err != nil {
		t.Fatal(err)
	}
	if c.Couplings != 8 || c.Hidden != 256 || c.HiddenLayers() != 1 || c.Features != 43 {
		t.Errorf("paper preset %+v, want App. O.1's 8 couplings, 1 x 256", c)
	}
	m := New(c, tensor.NewRNG(1))
	n := 0
	for _, p := range nn.Params(m) {
		n += len(p.Data)
	}
	if n != c.Params() {
		t.Errorf("model has %d parameters, Config.Params says %d", n, c.Params())
	}
	for i, bad := range []Config{
		{Features: 1},                  // 0
		{Features: 4, Couplings: -1},   // 1
		{Features: 4, Hidden: -2},      // 2
		{Features: 4, Layers: -2},      // 3
		{Features: 4, OutInit: "ones"}, // 4
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%d: Validate(%+v) = nil, want an error", i, bad)
		}
	}
	if _, err := Preset("huge", 4); err == nil {
		t.Errorf("unknown preset accepted")
	}
}
