package experiment

import (
	"fmt"
	"strings"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/model/glow"
	"github.com/flowood/flowood/tensor"
)

// glowScales returns a Glow's scales, outermost first: its bijector is
// the logit followed by nested MultiScales.
func glowScales(m *glow.Model) ([]*bijector.MultiScale, error) {
	ch, ok := m.Bijector.(flow.Chain)
	if !ok || len(ch) != 2 {
		return nil, fmt.Errorf("coupling view: Glow bijector %T, want the logit and the scales", m.Bijector)
	}
	var scales []*bijector.MultiScale
	for b := ch[1]; b != nil; {
		ms, ok := b.(*bijector.MultiScale)
		if !ok {
			return nil, fmt.Errorf("coupling view: Glow scale %d is a %T, want a MultiScale", len(scales), b)
		}
		scales = append(scales, ms)
		b = ms.Next
	}
	return scales, nil
}

// observeGlowCouplings runs the Glow on x (one example of shape [1, H,
// W, C]) with an observer on every coupling and returns their maps in
// forward order. Input, S, T and Output are the changed half of the
// channels in the coupling's layout (Shape); the Image maps are in the
// image's layout, as the paper's App. H shows them: the coupling's whole
// input and output (both halves) and its s and t (zero on the half it
// conditions on), with the channels that earlier scales factored out
// joined (their values for the activations, zero for s and t) and every
// squeeze undone (flow.Unarrange of each scale's steps).
func observeGlowCouplings(m *glow.Model, x *tensor.Tensor) ([]CouplingMaps, error) {
	scales, err := glowScales(m)
	if err != nil {
		return nil, err
	}
	var maps []CouplingMaps
	var pending *CouplingMaps
	for _, cp := range m.Couplings {
		cp.Observe = func(s, t, z *tensor.Tensor) {
			pending = &CouplingMaps{Shape: [3]int{z.Shape[1], z.Shape[2], z.Shape[3]}, S: clone(s.Data), T: clone(t.Data), Output: clone(z.Data)}
		}
	}
	defer func() {
		for _, cp := range m.Couplings {
			cp.Observe = nil
		}
	}()
	p := tensor.GradFree()
	defer p.Close()
	// last[k] is the latest output within scale k (after its last step:
	// what it factors half of out); prev is the input of the next step
	last := make([]*tensor.Tensor, len(scales))
	var prev *tensor.Tensor
	var full [][2]*tensor.Tensor // each coupling's whole input and output
	var scaleOf []int
	flow.TraceForward(m.Bijector, p.Input(x), "", func(name string, z, _ *tensor.Tensor) bool {
		k := strings.Count(name, ".next")
		zc := tensor.FromData(clone(z.Data), z.Shape...)
		if pending != nil {
			pending.Name = name
			maps = append(maps, *pending)
			full = append(full, [2]*tensor.Tensor{prev, zc})
			scaleOf = append(scaleOf, k)
			pending = nil
		}
		if k < len(last) && len(z.Shape) == 4 {
			last[k] = zc
		}
		prev = zc
		return false
	})
	if len(maps) != len(m.Couplings) {
		return nil, fmt.Errorf("coupling view: observed %d of the Glow's %d couplings", len(maps), len(m.Couplings))
	}
	for i := range maps {
		k := scaleOf[i]
		in, out := full[i][0], full[i][1]
		c := in.Shape[3]
		maps[i].Input = clone(tensor.Slice(in, c/2, c).Data)
		// the factored-out halves of the scales before k
		outs := make([]*tensor.Tensor, k)
		zeros := make([]*tensor.Tensor, k)
		for j := range k {
			cj := last[j].Shape[3]
			outs[j] = tensor.Slice(last[j], 0, cj/2)
			zeros[j] = tensor.New(outs[j].Shape...)
		}
		half := func(v []float32) *tensor.Tensor {
			return tensor.Concat(tensor.New(1, in.Shape[1], in.Shape[2], c/2), tensor.FromData(clone(v), 1, in.Shape[1], in.Shape[2], c/2))
		}
		maps[i].ImageInput = unsqueezeGlow(scales, k, in, outs)
		maps[i].ImageOutput = unsqueezeGlow(scales, k, out, outs)
		maps[i].ImageS = unsqueezeGlow(scales, k, half(maps[i].S), zeros)
		maps[i].ImageT = unsqueezeGlow(scales, k, half(maps[i].T), zeros)
	}
	return maps, nil
}

// unsqueezeGlow maps v, a tensor in the layout of scale k's steps, to the
// image's layout: scale by scale inwards-out, the steps' squeeze undone
// (flow.Unarrange) and the factored-out channels outs[j] of the scale
// around it joined in front, as MultiScale.Inverse joins them.
func unsqueezeGlow(scales []*bijector.MultiScale, k int, v *tensor.Tensor, outs []*tensor.Tensor) []float32 {
	for j := k; j >= 0; j-- {
		v = flow.Unarrange(scales[j].Steps, v)
		if j > 0 {
			v = tensor.Concat(outs[j-1], v)
		}
	}
	return clone(v.Data)
}
