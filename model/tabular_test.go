package model

import (
	"strings"
	"testing"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/tabular"
)

func TestTabularEntry(t *testing.T) {
	e, err := Lookup("tabular")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Accepts(datakind.Tabular) || e.Accepts(datakind.Image) {
		t.Errorf("tabular accepts %v", e.Kinds)
	}
	s := datakind.TabularShape(43)
	cfg, td, err := e.Preset("paper", s, "miniboone")
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.(tabular.Config); c.Features != 43 || c.Couplings != 8 || c.Hidden != 256 {
		t.Errorf("paper preset %+v", c)
	}
	if td.Optimizer != "adamw" || td.WeightDecay != 1e-3 || td.Batch != 32 || td.LR != 1e-4 || td.Epochs != 100 {
		t.Errorf("paper training defaults %+v, want App. O.1's", td)
	}
	if _, _, err := e.Preset("cpu", datakind.ImageShape(28, 28, 1), "mnist"); err == nil || !strings.Contains(err.Error(), "image") {
		t.Errorf("tabular on images: %v", err)
	}
	for i, c := range []struct{ json, want string }{
		{`{"couplings": 2, "hiden": 4}`, "hiden"},         // 0: unknown field
		{`{"features": 10}`, "features 10 differs"},       // 1
		{`{"couplings": 100000}`, "couplings 100000"},     // 2
		{`{"hidden": 16384, "layers": 64}`, "parameters"}, // 3: too large to build
		{`{"layers": -3}`, "layers -3"},                   // 4
		{`{"out_init": "ones"}`, "out_init"},              // 5
	} {
		if _, err := e.DecodeConfig([]byte(c.json), s); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d: DecodeConfig(%s) = %v, want an error with %q", i, c.json, err, c.want)
		}
	}
	cfg, err = e.DecodeConfig([]byte(`{"couplings": 2}`), s)
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.(tabular.Config); c.Features != 43 || c.Hidden != 256 || c.OutInit != "pytorch" {
		t.Errorf("decoded %+v, want features from the data and defaults filled", c)
	}
}
