package model

import (
	"strings"
	"testing"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/glow"
)

// TestGlowEntry checks the glow registry entry: App. E's presets for
// grayscale and colour images, their training hyperparameters with a
// warm-up, strict decoding and bounds.
func TestGlowEntry(t *testing.T) {
	e, err := Lookup("glow")
	if err != nil {
		t.Fatal(err)
	}
	cfg, td, err := e.Preset("paper", datakind.ImageShape(28, 28, 1), "fashionmnist")
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.(glow.Config); c.Scales != 2 || c.Steps != 16 || c.Hidden != 200 || c.Layers != 3 {
		t.Errorf("grayscale paper preset %+v, want 2 scales x 16 steps, 200 hidden, 3 layers", c)
	}
	if td.Optimizer != "rmsprop" || td.LR != 5e-5 || td.Batch != 32 || td.Epochs != 80 || td.Warmup <= 0 {
		t.Errorf("paper training %+v", td)
	}
	cfg, _, err = e.Preset("paper", datakind.ImageShape(32, 32, 3), "cifar10")
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.(glow.Config); c.Scales != 3 || c.Steps != 8 || c.Hidden != 400 {
		t.Errorf("colour paper preset %+v, want 3 scales x 8 steps, 400 hidden", c)
	}
	for _, p := range []string{"cpu", "tiny"} {
		if _, td, err := e.Preset(p, datakind.ImageShape(28, 28, 1), "fashionmnist"); err != nil || td.Warmup <= 0 {
			t.Errorf("preset %s: warm-up %d, %v", p, td.Warmup, err)
		}
	}
	s := datakind.ImageShape(28, 28, 1)
	for _, bad := range []struct{ json, want string }{
		{`{"stepz": 3}`, "stepz"},
		{`{"scales": 3}`, "squeezed"},
		{`{"steps": 100000}`, "steps"},
		{`{"coupling": "cubic"}`, "coupling"},
		{`{"lu": "yes"}`, "lu"},
		{`{"split_prior": "maybe"}`, "split_prior"},
		{`{"height": 32}`, "height"},
	} {
		if _, err := e.DecodeConfig([]byte(bad.json), s); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("model_config %s: error %v, want one naming %s", bad.json, err, bad.want)
		}
	}
	c, err := e.DecodeConfig([]byte(`{"steps": 2, "hidden": 8, "lu": "on", "split_prior": "on", "coupling": "additive"}`), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.New(c, 1); err != nil {
		t.Fatal(err)
	}
}
