package experiment

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/model/glow"
	"github.com/flowood/flowood/tensor"
)

// tinyGlowRun trains a tiny Glow on the embedded FashionMNIST for a few
// steps into dir.
func tinyGlowRun(t *testing.T, dir string, seed uint64) RunConfig {
	t.Helper()
	return tinyModelRun(t, "glow", dir, seed)
}

// TestCouplingViewGlow checks the coupling view on a tiny Glow against an
// independent recomputation: each coupling's s and t equal its
// st-network's output on the conditioning half of its input (found by
// tracing the flow here), transformed by s = scale·tanh(raw); its input
// and output are the changed half, with z = (x + t) exp(s); the last
// coupling's output in the image's layout is the flow's unsqueeze(z)
// (Flow.Unarrange of the latent); s in the image's layout is zero on the
// half of the values a coupling of the first scale conditions on; and the
// files are written.
func TestCouplingViewGlow(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	rc := tinyGlowRun(t, run, 11)
	out := filepath.Join(t.TempDir(), "v")
	const index = 4
	views, err := CouplingView(context.Background(), run, ViewOptions{OOD: []string{"mnist"}, Index: []int{index}, Out: out})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"coupling-fashionmnist-test-4.png", "coupling-fashionmnist-test-4.npz", "coupling-mnist-test-4.png", "coupling-mnist-test-4.npz"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	mm, err := loadReference(run, rc, "run")
	if err != nil {
		t.Fatal(err)
	}
	m := mm.(*glow.Model)
	m.SetTraining(false)
	maps := views["mnist test"][0]
	if len(maps) != len(m.Couplings) || len(maps) != m.Config.Scales*m.Config.Steps {
		t.Fatalf("%d couplings observed, the model has %d", len(maps), len(m.Couplings))
	}

	// the example as the view reads it
	x, err := LoadExamples(rc.Data, "mnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	const d = 28 * 28
	u := make([]float32, d)
	x.Read(u, []int{index}, rand.New(rand.NewPCG(0, index)))
	p := tensor.GradFree()
	defer p.Close()
	inputs := map[string][]float32{}
	shapes := map[string][]int{}
	var prev *tensor.Tensor
	flow.TraceForward(m.Bijector, p.Input(tensor.FromData(clone(u), 1, 28, 28, 1)), "", func(name string, z, _ *tensor.Tensor) bool {
		if prev != nil {
			inputs[name], shapes[name] = clone(prev.Data), append([]int(nil), prev.Shape...)
		}
		prev = tensor.FromData(clone(z.Data), z.Shape...)
		return false
	})
	for k, cm := range maps {
		in, sh := inputs[cm.Name], shapes[cm.Name]
		if in == nil || len(sh) != 4 {
			t.Fatalf("coupling %d: no traced input at %q", k, cm.Name)
		}
		h, w, c := sh[1], sh[2], sh[3]
		half := c / 2
		if cm.Shape != [3]int{h, w, half} {
			t.Fatalf("coupling %d shape %v, its input is %v", k, cm.Shape, sh)
		}
		id := make([]float32, h*w*half)
		for i := range h * w {
			copy(id[i*half:(i+1)*half], in[i*c:i*c+half])
		}
		cp := m.Couplings[k]
		raw := cp.Net.Forward(p.Input(tensor.FromData(id, 1, h, w, half)))
		for i := range h * w {
			for j := range half {
				s := float64(cp.Scale.Data[j]) * math.Tanh(float64(raw.Data[i*c+j]))
				tv := float64(raw.Data[i*c+half+j])
				xv := float64(in[i*c+half+j])
				q := i*half + j
				if math.Abs(float64(cm.S[q])-s) > 1e-5 || math.Abs(float64(cm.T[q])-tv) > 1e-5 {
					t.Fatalf("coupling %d (%s) at %d: s, t = %v, %v; st-network gives %v, %v", k, cm.Name, q, cm.S[q], cm.T[q], s, tv)
				}
				if float64(cm.Input[q]) != xv {
					t.Fatalf("coupling %d input at %d is %v, the traced input %v", k, q, cm.Input[q], xv)
				}
				if z := (xv + tv) * math.Exp(s); math.Abs(float64(cm.Output[q])-z) > 1e-4*(1+math.Abs(z)) {
					t.Fatalf("coupling %d output at %d is %v, (x + t) exp(s) = %v", k, q, cm.Output[q], z)
				}
			}
		}
		for _, img := range [][]float32{cm.ImageInput, cm.ImageS, cm.ImageT, cm.ImageOutput} {
			if len(img) != d {
				t.Fatalf("coupling %d: image-layout map of %d values, want %d", k, len(img), d)
			}
		}
	}
	// the first scale's couplings condition on half of all values
	zeros := 0
	for _, v := range maps[0].ImageS {
		if v == 0 {
			zeros++
		}
	}
	if zeros < d/2 {
		t.Errorf("first coupling's s is zero at %d of %d image positions, want at least half", zeros, d)
	}
	// after the last coupling only rearrangements remain: its output in
	// the image's layout is unsqueeze(z)
	z, _ := m.Forward(p.Input(tensor.FromData(clone(u), 1, 28, 28, 1)))
	want := m.Unarrange(z)
	last := maps[len(maps)-1].ImageOutput
	for i, v := range want.Data {
		if math.Abs(float64(last[i]-v)) > 1e-5*(1+math.Abs(float64(v))) {
			t.Fatalf("last coupling's output in the image's layout at %d is %v, unsqueeze(z) %v", i, last[i], v)
		}
	}
}
