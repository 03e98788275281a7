package realnvp

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TestMaskModels runs the flow contract over App. K models with each mask
// and a bottleneck, and over the multiscale model with the cycle mask
// (softplus st-networks, so that end-to-end gradients are checked too).
func TestMaskModels(t *testing.T) {
	appk := func(mask string, l int) Config {
		return Config{Height: 8, Width: 8, Channels: 1, Layout: "appk", Blocks: 1, Mid: 4, Activation: "softplus",
			Recompute: "off", Mask: mask, Bottleneck: l}
	}
	cfgs := []Config{appk("checkerboard", 0), appk("horizontal", 0), appk("vertical", 0), appk("cycle", 0), appk("centre", 0),
		appk("checkerboard", 5), appk("cycle", 5),
		{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Activation: "softplus", Mask: "cycle"},
		{Height: 8, Width: 8, Channels: 2, Layout: "appk", Couplings: 4, Blocks: 1, Mid: 4, Activation: "softplus", Mask: "channel", Recompute: "on"},
	}
	for _, cfg := range cfgs {
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
		t.Run(fmt.Sprintf("%s/%s/l=%d", cfg.WithDefaults().Layout, cfg.Mask, cfg.Bottleneck), func(t *testing.T) {
			flowtest.CheckBijector(t, m, x, flowtest.Options{GradSamples: 1, Step: 1e-2})
		})
	}
}

// TestAppKStructure checks the App. K model's couplings: 8 on the whole
// image, the cycle mask's quadrants, and bottlenecks without skip
// connections in every st-network.
func TestAppKStructure(t *testing.T) {
	cfg, err := Preset("appk_cpu")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mask, cfg.Bottleneck = "cycle", 10
	m := New(cfg, tensor.NewRNG(1))
	if len(m.Couplings) != 8 {
		t.Fatalf("%d couplings, want 8", len(m.Couplings))
	}
	for k, c := range m.Couplings {
		if !tensor.SameShape(c.Mask.Shape, []int{28, 28, 1}) {
			t.Errorf("coupling %d: mask %v, want the whole 28x28x1 image", k, c.Mask.Shape)
		}
		// quadrant k%4 conditions, (k+1)%4 is transformed: probe one
		// pixel of each (clockwise from the top left).
		probe := [4]int{0*28 + 0, 0*28 + 27, 27*28 + 27, 27*28 + 0}
		if c.Mask.Data[probe[k%4]] != 1 || c.Trans.Data[probe[(k+1)%4]] != 1 || c.Mask.Data[probe[(k+2)%4]] != 0 || c.Trans.Data[probe[(k+2)%4]] != 0 {
			t.Errorf("coupling %d: not quadrant %d -> %d", k, k%4, (k+1)%4)
		}
	}
	var bottlenecks, skips int
	for _, nt := range nn.Tensors(m) {
		if strings.Contains(nt.Name, "bottleneck.down.weight") {
			bottlenecks++
			if !tensor.SameShape(nt.T.Shape, []int{28 * 28 * cfg.Mid, 10}) {
				t.Errorf("%s: shape %v", nt.Name, nt.T.Shape)
			}
		}
		if strings.Contains(nt.Name, "skip") {
			skips++
		}
	}
	if bottlenecks != 8 || skips != 0 {
		t.Errorf("%d bottlenecks and %d skip tensors, want 8 and 0", bottlenecks, skips)
	}
}

// TestMaskErrors checks that a mask that does not fit the model is a
// clear error of Validate.
func TestMaskErrors(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small.png")
	img := image.NewGray(image.Rect(0, 0, 20, 20))
	img.SetGray(3, 3, color.Gray{Y: 255})
	f, err := os.Create(small)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	appk := Config{Layout: "appk"}
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{Layout: "appk", Mask: "bitmap:" + small}, []string{small, "20x20", "28x28"}},
		{Config{Mask: "bitmap:" + small}, []string{small, "20x20", "28x28"}},
		{Config{Layout: "appk", Mask: "channel"}, []string{"channel", "1 channel"}},
		{Config{Mask: "channel"}, []string{"channel", "spatial"}},
		{Config{Mask: "diagonal"}, []string{"diagonal", "cycle"}},
		{Config{Mask: "bitmap:" + filepath.Join(dir, "none.png")}, []string{"none.png"}},
		{Config{Couplings: 8}, []string{"couplings", "appk"}},
		{Config{Layout: "flat"}, []string{"layout", "flat"}},
		{Config{Bottleneck: -1}, []string{"bottleneck"}},
		{Config{Skip: "maybe"}, []string{"skip"}},
		// 2x2 images: the centre mask leaves nothing to see.
		{Config{Height: 2, Width: 2, Layout: "appk", Mask: "centre"}, []string{"centre", "2x2"}},
	} {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%+v validated", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %q", tc.cfg, err, w)
			}
		}
	}
	if err := appk.Validate(); err != nil {
		t.Errorf("appk layout: %v", err)
	}
}
