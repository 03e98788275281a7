package model

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
)

func TestLookup(t *testing.T) {
	e, err := Lookup("realnvp")
	if err != nil || e.Name != "realnvp" || !e.Accepts(datakind.Image) || e.Accepts(datakind.Tabular) {
		t.Fatalf("Lookup(realnvp) = %+v, %v", e, err)
	}
	if _, err := Lookup("glow9"); !errors.Is(err, ErrUnknownModel) || !strings.Contains(err.Error(), "realnvp") {
		t.Errorf("Lookup(glow9) = %v, want ErrUnknownModel listing realnvp", err)
	}
}

func TestRealNVPPreset(t *testing.T) {
	e, _ := Lookup("realnvp")
	for _, c := range []struct {
		shape  datakind.Shape
		scales int
	}{
		{datakind.ImageShape(28, 28, 1), 2}, // 0
		{datakind.ImageShape(32, 32, 3), 3}, // 1: App. E, colour
		{datakind.ImageShape(64, 64, 3), 2}, // 2
	} {
		cfg, td, err := e.Preset("cpu", c.shape, "x")
		if err != nil {
			t.Fatal(err)
		}
		rc := cfg.(realnvp.Config)
		if rc.Height != c.shape.Height || rc.Width != c.shape.Width || rc.Channels != c.shape.Channels || rc.Scales != c.scales {
			t.Errorf("%v: preset %+v, want its shape and %d scales", c.shape, rc, c.scales)
		}
		if td.Batch != 64 || td.LR != 1e-3 {
			t.Errorf("cpu training defaults %+v", td)
		}
	}
	if _, _, err := e.Preset("huge", datakind.ImageShape(28, 28, 1), "x"); err == nil || !strings.Contains(err.Error(), `"huge"`) {
		t.Errorf("unknown preset: %v", err)
	}
	if _, _, err := e.Preset("cpu", datakind.TabularShape(43), "miniboone"); err == nil || !strings.Contains(err.Error(), "tabular") {
		t.Errorf("realnvp on tabular data: %v", err)
	}
}

func TestDecodeConfig(t *testing.T) {
	e, _ := Lookup("realnvp")
	s := datakind.ImageShape(28, 28, 1)
	cfg, err := e.DecodeConfig([]byte(`{"mid": 4, "blocks": 1}`), s)
	if err != nil {
		t.Fatal(err)
	}
	// fields a configuration lacks take the values from before they
	// existed (realnvp.Config.UnmarshalJSON): plain convolutions, zero
	// output convolutions, decay on all
	want := realnvp.Config{Height: 28, Width: 28, Channels: 1, Mid: 4, Blocks: 1,
		WeightNorm: "off", OutInit: "zero", Decay: "all"}.WithDefaults()
	if cfg.(realnvp.Config) != want {
		t.Errorf("decoded %+v, want %+v", cfg, want)
	}
	// a decoded configuration builds
	m, err := e.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	lp := m.LogProb(tensor.Full(0.5, 2, 28, 28, 1))
	if len(lp.Data) != 2 || math.IsNaN(float64(lp.Data[0])) {
		t.Errorf("log p = %v", lp.Data)
	}
	for _, c := range []struct {
		json, want string
	}{
		{`{"heigth": 28}`, `unknown field "heigth"`},              // 0
		{`{"height": 1000000000}`, "height 1000000000 differs"},   // 1
		{`{"mid": 100000000}`, "mid 100000000 is out of range"},   // 2
		{`{"blocks": 1000000}`, "blocks 1000000 is out of range"}, // 3
		{`{"scales": 40}`, "scales 40 is out of range"},           // 4
		{`{"recompute": "maybe"}`, "recompute"},                   // 5
		{``, "missing"},                                           // 6
		{`[1]`, "model_config"},                                   // 7
	} {
		_, err := e.DecodeConfig([]byte(c.json), s)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "model_config") {
			t.Errorf("%s: error %v, want one starting with model_config and naming %q", c.json, err, c.want)
		}
	}
	if _, err := e.DecodeConfig([]byte(`{}`), datakind.ImageShape(1<<20, 28, 1)); err == nil || !strings.Contains(err.Error(), "height") {
		t.Errorf("huge data height: %v", err)
	}
	b, _ := json.Marshal(want)
	if again, err := e.DecodeConfig(b, s); err != nil || again.(realnvp.Config) != want {
		t.Errorf("round trip: %+v, %v", again, err)
	}
}
