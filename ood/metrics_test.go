package ood

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/integrate"
	"gonum.org/v1/gonum/stat"
)

const tol = 1e-12

func near(a, b, eps float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= eps
}

func allNear(a, b []float64, eps float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !near(a[i], b[i], eps) {
			return false
		}
	}
	return true
}

// bruteAUROC counts all pairs, ties as 1/2.
func bruteAUROC(in, out []float64) float64 {
	var s float64
	for _, a := range in {
		for _, b := range out {
			switch {
			case a > b:
				s++
			case a == b:
				s += 0.5
			}
		}
	}
	return s / float64(len(in)*len(out))
}

// bruteAP builds the precision-recall curve by scanning every distinct
// threshold of the pooled scores (descending) and summing
// (R_k - R_{k-1}) * P_k, as scikit-learn's average_precision_score does.
func bruteAP(pos, neg []float64) float64 {
	var ts []float64
	ts = append(ts, pos...)
	ts = append(ts, neg...)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	slices.Reverse(ts)
	var ap, prevR float64
	for _, t := range ts {
		tp, fp := 0, 0
		for _, v := range pos {
			if v >= t {
				tp++
			}
		}
		for _, v := range neg {
			if v >= t {
				fp++
			}
		}
		r := float64(tp) / float64(len(pos))
		p := float64(tp) / float64(tp+fp)
		ap += (r - prevR) * p
		prevR = r
	}
	return ap
}

// bruteFPR scans all distinct pooled thresholds from the top and returns
// the FPR at the first one whose TPR reaches tpr.
func bruteFPR(in, out []float64, tpr float64) float64 {
	var ts []float64
	ts = append(ts, in...)
	ts = append(ts, out...)
	slices.Sort(ts)
	ts = slices.Compact(ts)
	slices.Reverse(ts)
	for _, t := range ts {
		tp, fp := 0, 0
		for _, v := range in {
			if v >= t {
				tp++
			}
		}
		for _, v := range out {
			if v >= t {
				fp++
			}
		}
		if float64(tp)/float64(len(in)) >= tpr {
			return float64(fp) / float64(len(out))
		}
	}
	panic("unreachable")
}

// gonumROC returns gonum's ROC curve for the pooled scores.
func gonumROC(in, out []float64) (tpr, fpr []float64) {
	y := append(slices.Clone(in), out...)
	classes := make([]bool, len(y))
	for i := range in {
		classes[i] = true
	}
	stat.SortWeightedLabeled(y, classes, nil)
	tpr, fpr, _ = stat.ROC(nil, y, classes, nil)
	return tpr, fpr
}

// randomScores returns n scores; with ties set they are small integers so
// that many ties occur across and within sets.
func randomScores(rng *rand.Rand, n int, shift float64, ties bool) []float64 {
	x := make([]float64, n)
	for i := range x {
		if ties {
			x[i] = float64(rng.IntN(6)) + math.Round(shift)
		} else {
			x[i] = rng.NormFloat64() + shift
		}
	}
	return x
}

func TestSklearnDocExample(t *testing.T) {
	// y = [0, 0, 1, 1], scores = [0.1, 0.4, 0.35, 0.8].
	in := []float64{0.35, 0.8}
	out := []float64{0.1, 0.4}
	if got := AUROC(in, out); !near(got, 0.75, tol) {
		t.Errorf("AUROC = %v, want 0.75", got)
	}
	if got := AUPRIn(in, out); !near(got, 5.0/6, tol) {
		t.Errorf("AUPRIn = %v, want 0.8333...", got)
	}
	// OOD positive, negated: desc order -0.1(+), -0.35(-), -0.4(+), -0.8(-)
	// gives 0.5*1 + 0.5*2/3.
	if got := AUPROut(in, out); !near(got, 5.0/6, tol) {
		t.Errorf("AUPROut = %v, want 0.8333...", got)
	}
	// Retaining both in-distribution examples needs threshold 0.35, which
	// also accepts the OOD score 0.4.
	if got := FPRAt95TPR(in, out); got != 0.5 {
		t.Errorf("FPRAt95TPR = %v, want 0.5", got)
	}
	if got := FPRAtTPR(in, out, 0.5); got != 0 {
		t.Errorf("FPRAtTPR(0.5) = %v, want 0", got)
	}
}

func TestHandComputedTies(t *testing.T) {
	in := []float64{1, 1, 2}
	out := []float64{1, 0}
	// 2 beats both (2), each 1 beats 0 (2) and ties 1 (2*0.5): 5/6.
	if got := AUROC(in, out); !near(got, 5.0/6, tol) {
		t.Errorf("AUROC = %v, want 5/6", got)
	}
	// Thresholds 2: TP=1 FP=0, P=1, dR=1/3; 1: TP=3 FP=1, P=3/4, dR=2/3.
	if got, want := AUPRIn(in, out), 1.0/3+2.0/3*3.0/4; !near(got, want, tol) {
		t.Errorf("AUPRIn = %v, want %v", got, want)
	}
	// Perfect separation and complete overlap.
	if got := AUROC([]float64{3, 4}, []float64{1, 2}); got != 1 {
		t.Errorf("separated AUROC = %v, want 1", got)
	}
	if got := AUROC([]float64{1, 1}, []float64{1, 1, 1}); got != 0.5 {
		t.Errorf("all-tied AUROC = %v, want 0.5", got)
	}
	if got := AUPRIn([]float64{1, 1}, []float64{1, 1, 1}); !near(got, 0.4, tol) {
		t.Errorf("all-tied AUPRIn = %v, want 0.4", got)
	}
}

func TestAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		ties := trial%2 == 0
		nIn := 1 + rng.IntN(40)
		nOut := 1 + rng.IntN(40)
		in := randomScores(rng, nIn, 1, ties)
		out := randomScores(rng, nOut, 0, ties)
		if trial%5 == 0 {
			in[0] = math.Inf(-1)
			out[len(out)-1] = math.Inf(-1)
		}
		if got, want := AUROC(in, out), bruteAUROC(in, out); !near(got, want, tol) {
			t.Fatalf("trial %d: AUROC = %v, brute force %v", trial, got, want)
		}
		if got, want := AUPRIn(in, out), bruteAP(in, out); !near(got, want, 1e-12) {
			t.Fatalf("trial %d: AUPRIn = %v, brute force %v", trial, got, want)
		}
		if got, want := AUPROut(in, out), bruteAP(negated(out), negated(in)); !near(got, want, 1e-12) {
			t.Fatalf("trial %d: AUPROut = %v, brute force %v", trial, got, want)
		}
		for _, q := range []float64{0.05, 0.5, 0.8, 0.95, 1} {
			if got, want := FPRAtTPR(in, out, q), bruteFPR(in, out, q); got != want {
				t.Fatalf("trial %d: FPRAtTPR(%v) = %v, brute force %v", trial, q, got, want)
			}
		}
	}
}

func TestAgainstGonumROC(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 100 {
		ties := trial%2 == 1
		in := randomScores(rng, 5+rng.IntN(200), 0.7, ties)
		out := randomScores(rng, 5+rng.IntN(200), 0, ties)
		tpr, fpr := gonumROC(in, out)
		want := integrate.Trapezoidal(fpr, tpr)
		if got := AUROC(in, out); !near(got, want, 1e-12) {
			t.Fatalf("trial %d: AUROC = %v, gonum trapezoid %v", trial, got, want)
		}
		// Our own ROC curve must coincide with gonum's and integrate to AUROC.
		f, tp, th := ROC(in, out)
		if !allNear(f, fpr, 1e-12) || !allNear(tp, tpr, 1e-12) {
			t.Fatalf("trial %d: ROC differs from gonum:\n fpr %v\n  vs %v\n tpr %v\n  vs %v", trial, f, fpr, tp, tpr)
		}
		if len(th) != len(f) || !math.IsInf(th[0], 1) {
			t.Fatalf("trial %d: bad thresholds %v", trial, th)
		}
		if got := integrate.Trapezoidal(f, tp); !near(got, AUROC(in, out), 1e-12) {
			t.Fatalf("trial %d: trapezoid of ROC = %v, AUROC %v", trial, got, AUROC(in, out))
		}
		// FPR at 95% TPR is the FPR at gonum's first point with TPR >= 0.95.
		// gonum computes rates as 1 - x, so allow for its rounding; with at
		// most 205 examples no attainable TPR lies within 1e-12 of 0.95
		// without being equal to it.
		var wantFPR float64
		for i := range tpr {
			if tpr[i] >= 0.95-1e-12 {
				wantFPR = fpr[i]
				break
			}
		}
		if got := FPRAt95TPR(in, out); !near(got, wantFPR, 1e-12) {
			t.Fatalf("trial %d: FPRAt95TPR = %v, gonum curve %v", trial, got, wantFPR)
		}
	}
}

func TestSymmetries(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	in := randomScores(rng, 57, 1, true)
	out := randomScores(rng, 31, 0, true)
	if a, b := AUROC(in, out), 1-AUROC(out, in); !near(a, b, tol) {
		t.Errorf("AUROC(in,out) = %v, 1-AUROC(out,in) = %v", a, b)
	}
	if a, b := AUROC(in, out), AUROC(negated(out), negated(in)); !near(a, b, tol) {
		t.Errorf("AUROC not invariant under swapping class and sign: %v vs %v", a, b)
	}
	if a, b := AUPROut(in, out), AUPRIn(negated(out), negated(in)); !near(a, b, tol) {
		t.Errorf("AUPROut = %v, AUPRIn of swapped = %v", a, b)
	}
	inCopy, outCopy := slices.Clone(in), slices.Clone(out)
	Evaluate(in, out)
	if !slices.Equal(in, inCopy) || !slices.Equal(out, outCopy) {
		t.Error("Evaluate modified its inputs")
	}
}

func TestFPRThresholdRule(t *testing.T) {
	in := make([]float64, 20)
	for i := range in {
		in[i] = float64(i + 1) // 1..20
	}
	// 95% of 20 is 19, so the threshold is the 19th largest score, 2.
	out := []float64{1.5, 2, 2.5, 30}
	if got := FPRAt95TPR(in, out); got != 0.75 {
		t.Errorf("FPRAt95TPR = %v, want 0.75 (threshold 2)", got)
	}
	// 96% needs all 20: threshold 1.
	if got := FPRAtTPR(in, out, 0.96); got != 1 {
		t.Errorf("FPRAtTPR(0.96) = %v, want 1", got)
	}
	for _, bad := range []float64{0, -0.1, 1.01, math.NaN()} {
		if got := FPRAtTPR(in, out, bad); !math.IsNaN(got) {
			t.Errorf("FPRAtTPR(tpr=%v) = %v, want NaN", bad, got)
		}
	}
}

func TestInvalidInputs(t *testing.T) {
	nan := math.NaN()
	fns := map[string]func(in, out []float64) float64{
		"AUROC": AUROC, "AUPRIn": AUPRIn, "AUPROut": AUPROut, "FPRAt95TPR": FPRAt95TPR,
	}
	cases := [][2][]float64{
		{nil, {1}},
		{{1}, {}},
		{{1, nan}, {0}},
		{{1}, {nan}},
	}
	for name, f := range fns {
		for _, c := range cases {
			if got := f(c[0], c[1]); !math.IsNaN(got) {
				t.Errorf("%s(%v, %v) = %v, want NaN", name, c[0], c[1], got)
			}
		}
	}
	if f, tp, th := ROC(nil, []float64{1}); f != nil || tp != nil || th != nil {
		t.Error("ROC of empty set is not nil")
	}
}

func TestInfinities(t *testing.T) {
	inf := math.Inf(1)
	in := []float64{-inf, 0, inf}
	out := []float64{-inf, -1}
	// -inf ties -inf (0.5) ; 0 beats both (2); inf beats both (2).
	if got := AUROC(in, out); !near(got, 4.5/6, tol) {
		t.Errorf("AUROC = %v, want 0.75", got)
	}
	r, err := Evaluate(in, out)
	if err != nil {
		t.Fatalf("Evaluate with infinities: %v", err)
	}
	for _, v := range []float64{r.AUROC, r.AUPRIn, r.AUPROut, r.FPRAt95TPR} {
		if math.IsNaN(v) || v < 0 || v > 1 {
			t.Errorf("metric out of range with infinities: %+v", r)
		}
	}
}

func TestEvaluate(t *testing.T) {
	in := []float64{0.35, 0.8}
	out := []float64{0.1, 0.4}
	r, err := Evaluate(in, out)
	if err != nil {
		t.Fatal(err)
	}
	// sklearn's documented example: roc_auc 0.75, average precision 5/6
	// (and 5/6 with the classes and the score's sign swapped).
	want := Report{AUROC: 0.75, AUPRIn: 5.0 / 6, AUPROut: 5.0 / 6, FPRAt95TPR: 0.5, NIn: 2, NOut: 2}
	if math.Abs(r.AUROC-want.AUROC) > 1e-12 || math.Abs(r.AUPRIn-want.AUPRIn) > 1e-12 ||
		math.Abs(r.AUPROut-want.AUPROut) > 1e-12 || r.FPRAt95TPR != want.FPRAt95TPR || r.NIn != 2 || r.NOut != 2 {
		t.Errorf("Evaluate = %+v, want %+v", r, want)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"auroc", "aupr_in", "aupr_out", "fpr_at_95_tpr", "n_in", "n_out"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON %s lacks key %q", b, k)
		}
	}
	if len(m) != 6 {
		t.Errorf("JSON %s has %d keys, want 6", b, len(m))
	}

	if _, err := Evaluate([]float64{1, math.NaN()}, out); !errors.Is(err, ErrNaNScore) {
		t.Errorf("NaN in-distribution score: err = %v, want ErrNaNScore", err)
	}
	if _, err := Evaluate(in, []float64{math.NaN()}); !errors.Is(err, ErrNaNScore) {
		t.Errorf("NaN OOD score: err = %v, want ErrNaNScore", err)
	}
	if _, err := Evaluate(nil, out); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty in: err = %v, want ErrEmpty", err)
	}
	if _, err := Evaluate(in, nil); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty out: err = %v, want ErrEmpty", err)
	}
}

func TestLargeInputIsFast(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	in := randomScores(rng, 200000, 0.5, false)
	out := randomScores(rng, 200000, 0, false)
	// Population AUROC is Phi(0.5/sqrt 2) = 0.63816.
	if got := AUROC(in, out); math.Abs(got-0.63816) > 0.005 {
		t.Errorf("AUROC = %v, want about 0.638", got)
	}
}
