package experiment

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/model/glow"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/viz"
)

// CouplingMaps are one affine coupling's activations for one example, in
// the coupling's own layout (Shape, [h, w, c]): its input and output on
// the part it transforms (the whole tensor for a spatial mask, the
// transformed channel half for a channel mask or a Glow coupling), and s
// and t there (zero where a spatial mask conditions).
type CouplingMaps struct {
	Name                string
	Shape               [3]int
	Input, S, T, Output []float32
	// ImageInput, ImageS, ImageT and ImageOutput are the maps in the
	// image's layout [H, W, C] (App. H: every squeeze undone, the
	// factored-out channels joined), when the view computes them (Glow;
	// nil for RealNVP, whose tiles are un-squeezed by showMap).
	ImageInput, ImageS, ImageT, ImageOutput []float32
}

// CouplingView writes the paper's coupling-layer views (Fig. 1b-c, 3, 9,
// 11, 14): for a few examples of the in-distribution test set and each
// OOD set, each affine coupling's input, s, -t (the paper shows -t) and
// output, un-squeezed to the image's size where the channels allow
// (averaged over the remaining channels otherwise), each tile scaled to
// its own range. Files in opt.Out per set and example:
// coupling-SET-INDEX.png (a row per coupling: input, s, -t, output) and
// coupling-SET-INDEX.npz (the raw maps, kNN_input, kNN_s, kNN_t,
// kNN_output, in the coupling's layout, and for Glow also kNN_input_image
// etc. in the image's layout). It needs a model with affine couplings
// (RealNVP, Glow); it returns the maps by set and example. Glow's tiles
// are its maps in the image's layout (observeGlowCouplings): the whole
// input and output, s and -t on the changed channels.
func CouplingView(ctx context.Context, run string, opt ViewOptions) (map[string][][]CouplingMaps, error) {
	rc, mm, sets, err := imageView(run, &opt, 2, "coupling")
	if err != nil {
		return nil, err
	}
	var observe func(x *tensor.Tensor) ([]CouplingMaps, error)
	switch m := mm.(type) {
	case *realnvp.Model:
		observe = func(x *tensor.Tensor) ([]CouplingMaps, error) { return observeCouplings(m, x), nil }
	case *glow.Model:
		observe = func(x *tensor.Tensor) ([]CouplingMaps, error) { return observeGlowCouplings(m, x) }
	default:
		return nil, fmt.Errorf("coupling view: the model (%T) has no affine couplings to observe (RealNVP and Glow have)", mm)
	}
	h, w, c := rc.Data.Height, rc.Data.Width, rc.Data.Channels
	d := h * w * c
	out := map[string][][]CouplingMaps{}
	for _, s := range sets {
		x, idx, err := viewExamples(ctx, rc, s, opt)
		if err != nil {
			return nil, err
		}
		label := s[0] + " " + s[1]
		for _, i := range idx {
			u := make([]float32, d)
			x.Read(u, []int{i}, rand.New(rand.NewPCG(opt.Seed, uint64(i))))
			maps, err := observe(tensor.FromData(u, 1, h, w, c))
			if err != nil {
				return nil, err
			}
			out[label] = append(out[label], maps)
			name := fmt.Sprintf("coupling-%s-%s-%d", s[0], s[1], i)
			var tiles [][]float32
			var arrays []*data.Array
			for k, cm := range maps {
				shown, sh := [4][]float32{cm.Input, cm.S, cm.T, cm.Output}, cm.Shape
				if cm.ImageInput != nil {
					shown, sh = [4][]float32{cm.ImageInput, cm.ImageS, cm.ImageT, cm.ImageOutput}, [3]int{h, w, c}
				}
				negT := make([]float32, len(shown[2]))
				for j, v := range shown[2] {
					negT[j] = -v
				}
				shown[2] = negT
				for _, img := range shown {
					tiles = append(tiles, showMap(img, sh, h, w, c))
				}
				arrays = append(arrays, mapArrays(k, "", cm.Shape, cm.Input, cm.S, cm.T, cm.Output)...)
				if cm.ImageInput != nil {
					arrays = append(arrays, mapArrays(k, "_image", [3]int{h, w, c}, cm.ImageInput, cm.ImageS, cm.ImageT, cm.ImageOutput)...)
				}
			}
			if err := viz.ImageGrid(filepath.Join(opt.Out, name+".png"), tiles, h, w, c, 4); err != nil {
				return nil, err
			}
			if err := data.WriteNPZFile(filepath.Join(opt.Out, name+".npz"), arrays); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// observeCouplings runs the model on x (one example) with an observer on
// every affine coupling and returns their maps in forward order.
func observeCouplings(m *realnvp.Model, x *tensor.Tensor) []CouplingMaps {
	var maps []CouplingMaps
	var pending *CouplingMaps
	for _, cp := range m.Couplings {
		cp.Observe = func(s, t, z *tensor.Tensor) {
			cm := CouplingMaps{Shape: [3]int{z.Shape[1], z.Shape[2], z.Shape[3]}, S: clone(s.Data), T: clone(t.Data), Output: clone(z.Data)}
			cm.Input = make([]float32, len(z.Data))
			for j, v := range z.Data {
				// x = z ⊙ exp(-s) - t where transformed; s = t = 0 elsewhere
				cm.Input[j] = v*float32(math.Exp(-float64(s.Data[j]))) - t.Data[j]
			}
			pending = &cm
		}
	}
	defer func() {
		for _, cp := range m.Couplings {
			cp.Observe = nil
		}
	}()
	p := tensor.GradFree()
	defer p.Close()
	flow.TraceForward(m.Bijector, p.Input(x), "", func(name string, _, _ *tensor.Tensor) bool {
		if pending != nil {
			pending.Name = name
			maps = append(maps, *pending)
			pending = nil
		}
		return false
	})
	return maps
}

func clone(v []float32) []float32 { return append([]float32(nil), v...) }

// mapArrays returns coupling k's four maps of shape sh as arrays
// kNN_input, kNN_s, kNN_t and kNN_output, each name followed by suffix.
func mapArrays(k int, suffix string, sh [3]int, input, s, t, output []float32) []*data.Array {
	var out []*data.Array
	for i, v := range [][]float32{input, s, t, output} {
		key := []string{"input", "s", "t", "output"}[i]
		out = append(out, &data.Array{Name: fmt.Sprintf("k%02d_%s%s", k, key, suffix), DType: "<f4", Shape: []int{sh[0], sh[1], sh[2]}, F32: v})
	}
	return out
}

// showMap returns a coupling map of shape sh as an h x w image with c
// channels (c 3) or one (else): un-squeezed while its channels allow,
// averaged over the channels left (grey in the 3 channels of an RGB
// image), resized by pixel repetition when still smaller, and scaled to
// [0, 1] by its own range.
func showMap(v []float32, sh [3]int, h, w, c int) []float32 {
	t := tensor.FromData(clone(v), 1, sh[0], sh[1], sh[2])
	for t.Shape[3]%4 == 0 && t.Shape[1]*2 <= h && t.Shape[2]*2 <= w && t.Shape[3] > c {
		t = tensor.Unsqueeze2x2(t)
	}
	th, tw, tc := t.Shape[1], t.Shape[2], t.Shape[3]
	oc := 1
	if c == 3 {
		oc = 3 // RGB tiles; maps without 3 channels in grey
	}
	img := make([]float32, h*w*oc)
	for i := range h {
		for j := range w {
			si, sj := i*th/h, j*tw/w
			src := t.Data[(si*tw+sj)*tc : (si*tw+sj+1)*tc]
			if oc == 3 && tc == 3 {
				copy(img[(i*w+j)*3:(i*w+j)*3+3], src)
				continue
			}
			var s float32
			for _, x := range src {
				s += x
			}
			for k := range oc {
				img[(i*w+j)*oc+k] = s / float32(tc)
			}
		}
	}
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range img {
		lo, hi = min(lo, x), max(hi, x)
	}
	for i, x := range img {
		if hi > lo {
			img[i] = (x - lo) / (hi - lo)
		} else {
			img[i] = 0.5
		}
	}
	return img
}
