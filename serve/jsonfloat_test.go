package serve

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestResponseNonFinite checks that a NaN score and an infinite threshold
// give valid JSON (strings "NaN", "-Inf", "+Inf") that reads back, and
// that finite numbers stay JSON numbers.
func TestResponseNonFinite(t *testing.T) {
	in := ScoreResponse{Model: "m", Threshold: math.Inf(-1), Thresholds: map[string]float64{"loglik": math.Inf(-1), "ic": 12.5},
		Results: []ImageResult{{Name: "a", LogLikelihood: math.NaN(), BitsPerDim: math.Inf(1), Scores: map[string]float64{"loglik": math.NaN(), "ic": 3}}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"threshold":"-Inf"`, `"loglik":"-Inf"`, `"ic":12.5`, `"log_likelihood":"NaN"`, `"bits_per_dim":"+Inf"`, `"ic":3`, `"model":"m"`, `"name":"a"`} {
		if !strings.Contains(s, want) {
			t.Errorf("JSON lacks %s: %s", want, s)
		}
	}
	var out ScoreResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	r := out.Results[0]
	if !math.IsInf(out.Threshold, -1) || !math.IsInf(out.Thresholds["loglik"], -1) || out.Thresholds["ic"] != 12.5 ||
		!math.IsNaN(r.LogLikelihood) || !math.IsInf(r.BitsPerDim, 1) || !math.IsNaN(r.Scores["loglik"]) || r.Scores["ic"] != 3 || r.Name != "a" || out.Model != "m" {
		t.Errorf("read back %+v", out)
	}
}
