package experiment

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/ood"
)

func TestSummarizeBitsPerDim(t *testing.T) {
	// log p(u) = D ln 256 - 5 D ln 2 is exactly 5 bits/dim.
	d := 784
	ll := float64(d)*math.Log(256) - 5*float64(d)*math.Ln2
	s := summarize("x", "test", []float64{ll, ll}, datakind.ImageShape(28, 28, 1))
	if math.Abs(float64(s.MeanBPD)-5) > 1e-12 || s.N != 2 {
		t.Errorf("summary %+v, want 5 bits/dim over 2 examples", s)
	}
}

func TestPrintTableShowsPaperNumbers(t *testing.T) {
	m := &Metrics{Model: "realnvp", In: SetSummary{Dataset: "fashionmnist", Split: "test", N: 3},
		OOD:     map[string]map[string]ood.Report{"mnist": {"loglik": {AUROC: 0.1, NIn: 3, NOut: 3}}},
		OODSets: map[string]SetSummary{"mnist": {Dataset: "mnist", Split: "test", N: 3}}}
	var buf bytes.Buffer
	m.PrintTable(&buf)
	for _, want := range []string{"mnist test (OOD)", "0.100", "0.108"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestRunConfigRoundTrip(t *testing.T) {
	rc, err := NewRunConfig("realnvp", "tiny", "mnist")
	if err != nil {
		t.Fatal(err)
	}
	rc.Train.Seed = 7
	if err := rc.Resolve(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := rc.Write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRunConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Train != rc.Train || got.ModelConfig != rc.ModelConfig || got.Data != rc.Data || got.Model != rc.Model {
		t.Errorf("read %+v, wrote %+v", got, rc)
	}
	if _, err := NewRunConfig("glow9", "tiny", "mnist"); err == nil {
		t.Error("unknown model accepted")
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"version": 9}`), 0o644)
	if _, err := ReadRunConfig(dir); err == nil || !strings.Contains(err.Error(), "version 9") {
		t.Errorf("version 9 config: %v", err)
	}
}

func TestJSONFloatNonFinite(t *testing.T) {
	for v, want := range map[float64]string{math.Inf(-1): `"-Inf"`, math.Inf(1): `"+Inf"`, 1.5: `1.5`} {
		b, err := JSONFloat(v).MarshalJSON()
		if err != nil || string(b) != want {
			t.Errorf("JSONFloat(%v) = %s, %v; want %s", v, b, err, want)
		}
	}
}
