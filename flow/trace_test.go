package flow_test

import (
	"math"
	"strings"
	"testing"

	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TestTraceForward checks that tracing a RealNVP visits every coupling,
// by the name its tensors have, in the order of the model's Couplings,
// and that the traced log-likelihood ("base") equals LogProb's.
func TestTraceForward(t *testing.T) {
	cfg, _ := realnvp.Preset("tiny")
	rng := tensor.NewRNG(2)
	m := realnvp.New(cfg, rng)
	flowtest.Perturb(m, rng, 0.05)
	u := tensor.New(3, 28, 28, 1)
	tensor.NewRNG(3).Uniform(u.Data, 0.01, 0.99)
	p := tensor.GradFree()
	defer p.Close()
	want := m.Flow.LogProb(p.Input(u))
	var names []string
	var got []float32
	m.TraceForward(p.Input(u), func(name string, z, logDet *tensor.Tensor) bool {
		names = append(names, name)
		if name == "base" {
			got = append([]float32(nil), z.Data...)
		}
		return false
	})
	// the couplings' names: the prefixes of their "scale" tensors
	var couplings []string
	for _, tn := range nn.Tensors(m) {
		if strings.HasSuffix(tn.Name, ".scale") {
			couplings = append(couplings, strings.TrimSuffix(tn.Name, ".scale"))
		}
	}
	if len(couplings) != len(m.Couplings) {
		t.Fatalf("%d scale tensors for %d couplings", len(couplings), len(m.Couplings))
	}
	i := 0
	for _, n := range names {
		if i < len(couplings) && n == couplings[i] {
			i++
		}
	}
	if i != len(couplings) || names[len(names)-1] != "base" {
		t.Errorf("traced %v; want every coupling %v in order, then base", names, couplings)
	}
	for j := range got {
		if math.Abs(float64(got[j]-want.Data[j])) > 1e-3 {
			t.Errorf("traced log p[%d] = %v, LogProb %v", j, got[j], want.Data[j])
		}
	}
	// stopping: the trace ends at the first layer visit asks to stop at
	var visited int
	stopped := m.TraceForward(p.Input(u), func(name string, z, logDet *tensor.Tensor) bool {
		visited++
		return name == couplings[1]
	})
	if !stopped || visited != indexOf(names, couplings[1])+1 {
		t.Errorf("stopping at %s: stopped %v after %d visits", couplings[1], stopped, visited)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
