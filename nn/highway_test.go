package nn

import (
	"math"
	"testing"

	"github.com/flowood/flowood/tensor"
)

// TestHighwayMix checks the fused highway layer against the same layer
// written with separate operations (tensor.Sigmoid): values and the
// gradients of all three inputs.
func TestHighwayMix(t *testing.T) {
	rng := tensor.NewRNG(1)
	mk := func() *tensor.Tensor { return tensor.Randn(rng, 2, 3, 3, 5).SetRequiresGrad(true) }
	tt, h, a := mk(), mk(), mk()
	for i := range tt.Data {
		tt.Data[i] *= 4 // the gate's tails too
	}
	r := tensor.Randn(rng, 2, 3, 3, 5)
	grads := func(out *tensor.Tensor) [][]float32 {
		tensor.Backward(tensor.Sum(tensor.Mul(out, r)))
		g := [][]float32{tt.Grad, h.Grad, a.Grad}
		tt.ZeroGrad()
		h.ZeroGrad()
		a.ZeroGrad()
		return g
	}
	fused := highwayMix(tt, h, a)
	fv := append([]float32(nil), fused.Data...)
	fg := grads(fused)
	gate := tensor.Sigmoid(tt)
	ref := tensor.Add(a, tensor.Mul(gate, tensor.Sub(h, a)))
	rv := append([]float32(nil), ref.Data...)
	rg := grads(ref)
	for i := range fv {
		if d := math.Abs(float64(fv[i] - rv[i])); d > 1e-5 {
			t.Fatalf("value %d: fused %g, separate %g", i, fv[i], rv[i])
		}
	}
	for k, name := range []string{"t", "h", "a"} {
		for i := range fg[k] {
			if d := math.Abs(float64(fg[k][i] - rg[k][i])); d > 1e-5 {
				t.Fatalf("gradient of %s, %d: fused %g, separate %g", name, i, fg[k][i], rg[k][i])
			}
		}
	}
}

// TestHighwayShape checks the network's shapes, its parameter names and
// that it starts at zero output (zero output convolution).
func TestHighwayShape(t *testing.T) {
	rng := tensor.NewRNG(2)
	n := NewHighway(rng, 2, 6, 4, 3)
	y := n.Forward(tensor.Randn(rng, 2, 5, 5, 2))
	if !tensor.SameShape(y.Shape, []int{2, 5, 5, 4}) {
		t.Fatalf("output shape %v", y.Shape)
	}
	for _, v := range y.Data {
		if v != 0 {
			t.Fatal("a new highway network's output is not zero")
		}
	}
	names := map[string]bool{}
	for _, nt := range Tensors(n) {
		names[nt.Name] = true
	}
	for _, want := range []string{"in_conv.weight", "layers.2.conv_h.weight", "layers.2.conv_t.bias", "out_conv.weight"} {
		if !names[want] {
			t.Errorf("no tensor %s (have %v)", want, names)
		}
	}
}
