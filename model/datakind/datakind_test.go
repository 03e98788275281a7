package datakind

import (
	"math"
	"strings"
	"testing"
)

func TestShapeValidate(t *testing.T) {
	for i, c := range []struct {
		s    Shape
		want string // "" for valid
	}{
		{ImageShape(28, 28, 1), ""},                 // 0
		{TabularShape(43), ""},                      // 1
		{ImageShape(0, 28, 1), "height 0"},          // 2
		{ImageShape(28, MaxSide+1, 1), "width"},     // 3
		{ImageShape(28, 28, 9), "channels 9"},       // 4
		{TabularShape(MaxFeatures + 1), "features"}, // 5
		{Shape{Kind: "video"}, `kind "video"`},      // 6
	} {
		err := c.s.Validate()
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%d: %v.Validate() = %v, want %q", i, c.s, err, c.want)
		}
	}
}

func TestPerDim(t *testing.T) {
	img := ImageShape(28, 28, 1)
	d := float64(img.Dim())
	// log p(u) = D ln 256 - 5 D ln 2 is exactly 5 bits/dim.
	if got := img.PerDim(d*math.Log(256) - 5*d*math.Ln2); math.Abs(got-5) > 1e-12 {
		t.Errorf("PerDim = %v bits/dim, want 5", got)
	}
	tab := TabularShape(4)
	if got := tab.PerDim(-8); got != 2 || tab.Unit() != "nats/dim" || img.Unit() != "bits/dim" {
		t.Errorf("tabular PerDim(-8) over 4 features = %v %s, want 2 nats/dim", got, tab.Unit())
	}
	for _, s := range []Shape{img, tab} {
		a, b := s.Affine()
		for _, lp := range []float64{-3000, 0, 1234.5} {
			if got, want := a*lp+b, s.PerDim(lp); math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
				t.Errorf("%v: a·%v + b = %v, PerDim = %v", s, lp, got, want)
			}
		}
	}
}
