package flow_test

import (
	"slices"
	"testing"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
)

// TestUnarrange checks unsqueeze(z) on a flow that only rearranges (a
// RealNVP's scales with their couplings left out): there Unarrange is
// the inverse, so it must give back x exactly; and on a full RealNVP the
// latent comes back in the image's shape with the same values.
func TestUnarrange(t *testing.T) {
	// two scales of 8x8x1: squeeze, factor out half, a last scale
	last := &bijector.MultiScale{Steps: flow.Chain{}, Shape: [3]int{4, 4, 2}}
	ms := &bijector.MultiScale{Steps: flow.Chain{bijector.Squeeze{}}, Next: last, Shape: [3]int{4, 4, 4}}
	rng := tensor.NewRNG(1)
	x := tensor.Randn(rng, 3, 8, 8, 1)
	p := tensor.GradFree()
	defer p.Close()
	z, _ := ms.Forward(p.Input(x))
	back := flow.Unarrange(ms, z)
	if !tensor.SameShape(back.Shape, x.Shape) {
		t.Fatalf("unarranged shape %v, want %v", back.Shape, x.Shape)
	}
	for i, v := range back.Data {
		if v != x.Data[i] {
			t.Fatalf("value %d: %v, want %v", i, v, x.Data[i])
		}
	}
	// Arrange is Forward here, and the inverse of Unarrange.
	again := flow.Arrange(ms, back)
	for i, v := range again.Data {
		if v != z.Data[i] {
			t.Fatalf("Arrange: value %d: %v, want Forward's %v", i, v, z.Data[i])
		}
	}

	m := realnvp.New(realnvp.Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4}, rng)
	u := tensor.New(3, 8, 8, 1)
	rng.Uniform(u.Data, 0.1, 0.9)
	zm, _ := m.Forward(p.Input(u))
	img := flow.Unarrange(m.Bijector, zm)
	if !tensor.SameShape(img.Shape, u.Shape) {
		t.Fatalf("RealNVP unsqueeze(z) shape %v, want %v", img.Shape, u.Shape)
	}
	a, b := slices.Clone(img.Data), slices.Clone(zm.Data)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Errorf("unsqueeze(z) holds other values than z")
	}
	if re := m.Arrange(img); !slices.Equal(re.Data, zm.Data) {
		t.Errorf("Arrange(Unarrange(z)) is not z")
	}
}
