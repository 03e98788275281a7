package ood

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// valid reports whether both score sets are non-empty and NaN-free.
func valid(in, out []float64) bool {
	if len(in) == 0 || len(out) == 0 {
		return false
	}
	return !hasNaN(in) && !hasNaN(out)
}

// hasNaN reports whether x contains a NaN.
func hasNaN(x []float64) bool {
	for _, v := range x {
		if math.IsNaN(v) {
			return true
		}
	}
	return false
}

// sortedAsc returns an ascending sorted copy of x.
func sortedAsc(x []float64) []float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s
}

// sortedDesc returns a descending sorted copy of x.
func sortedDesc(x []float64) []float64 {
	s := slices.Clone(x)
	slices.SortFunc(s, func(a, b float64) int { return cmp.Compare(b, a) })
	return s
}

// negated returns a copy of x with every element negated.
func negated(x []float64) []float64 {
	s := make([]float64, len(x))
	for i, v := range x {
		s[i] = -v
	}
	return s
}

// AUROC returns the area under the ROC curve with in-distribution as the
// positive class and higher scores meaning more in-distribution. It is
// computed exactly as the Mann-Whitney statistic
//
//	AUROC = P(s_in > s_out) + P(s_in == s_out)/2
//
// over all len(in)*len(out) pairs, in O(n log n) time. This equals the
// trapezoidal area under the full (tie-aware) ROC curve and scikit-learn's
// roc_auc_score(y_in, score). AUROC returns NaN if either slice is empty
// or any score is NaN.
func AUROC(in, out []float64) float64 {
	if !valid(in, out) {
		return math.NaN()
	}
	a := sortedAsc(in)
	b := sortedAsc(out)
	var sum float64
	j := 0 // b[:j] are strictly below the current in-distribution value.
	for i := 0; i < len(a); {
		v := a[i]
		k := i
		for k < len(a) && a[k] == v {
			k++
		}
		for j < len(b) && b[j] < v {
			j++
		}
		e := j
		for e < len(b) && b[e] == v {
			e++
		}
		// Each of the k-i tied in-distribution scores beats j OOD scores
		// and ties with e-j of them.
		sum += float64(k-i) * (float64(j) + 0.5*float64(e-j))
		i = k
	}
	return sum / (float64(len(a)) * float64(len(b)))
}

// averagePrecision returns scikit-learn's average_precision_score for the
// positive scores pos and negative scores neg, higher meaning more
// positive: the sum over distinct thresholds t, in decreasing order, of
// (R(t) - R(previous t)) * P(t), where R and P are the recall and
// precision of the rule "score >= t". Only thresholds at which recall
// increases contribute, so it suffices to visit distinct positive scores.
func averagePrecision(pos, neg []float64) float64 {
	p := sortedDesc(pos)
	q := sortedDesc(neg)
	var sum float64
	j := 0 // q[:j] are the negatives with score >= the current threshold.
	for i := 0; i < len(p); {
		t := p[i]
		i0 := i
		for i < len(p) && p[i] == t {
			i++
		}
		for j < len(q) && q[j] >= t {
			j++
		}
		// Recall rises by (i-i0)/len(p); precision is i/(i+j).
		sum += float64(i-i0) * float64(i) / float64(i+j)
	}
	return sum / float64(len(p))
}

// AUPRIn returns the area under the precision-recall curve with
// in-distribution as the positive class and the score used as is, computed
// as step-wise average precision (scikit-learn's
// average_precision_score(y_in, score)): the sum over distinct thresholds
// of (R_n - R_{n-1}) * P_n, without interpolation. AUPRIn returns NaN if
// either slice is empty or any score is NaN.
func AUPRIn(in, out []float64) float64 {
	if !valid(in, out) {
		return math.NaN()
	}
	return averagePrecision(in, out)
}

// AUPROut returns the area under the precision-recall curve with OOD as
// the positive class and the score negated (scikit-learn's
// average_precision_score(1-y_in, -score)), computed as step-wise average
// precision like AUPRIn. AUPROut returns NaN if either slice is empty or
// any score is NaN.
func AUPROut(in, out []float64) float64 {
	if !valid(in, out) {
		return math.NaN()
	}
	return averagePrecision(negated(out), negated(in))
}

// FPRAtTPR returns the false positive rate at the first operating point
// whose true positive rate reaches tpr, with in-distribution as the
// positive class and "score >= threshold" as the acceptance rule.
//
// The threshold is the largest score t, among the in-distribution scores,
// such that the fraction of in-distribution scores >= t is at least tpr;
// equivalently t is the k-th largest in-distribution score where k is the
// smallest integer with k/len(in) >= tpr. The result is the fraction of
// OOD scores >= t. No interpolation between operating points is done: this
// matches fpr[argmax(tpr_curve >= tpr)] on scikit-learn's
// roc_curve(y_in, score).
//
// FPRAtTPR returns NaN if tpr is not in (0, 1], if either slice is empty
// or if any score is NaN.
func FPRAtTPR(in, out []float64, tpr float64) float64 {
	if !valid(in, out) || !(tpr > 0 && tpr <= 1) {
		return math.NaN()
	}
	t := acceptThreshold(in, tpr)
	var fp int
	for _, v := range out {
		if v >= t {
			fp++
		}
	}
	return float64(fp) / float64(len(out))
}

// acceptThreshold returns the k-th largest element of in, where k is the
// smallest integer in [1, len(in)] with k/len(in) >= tpr. The ratio is
// compared exactly as computed in float64, so that, for example, k = 19 of
// n = 20 qualifies for tpr = 0.95.
func acceptThreshold(in []float64, tpr float64) float64 {
	n := len(in)
	fn := float64(n)
	k := int(math.Ceil(tpr * fn))
	k = max(1, min(n, k))
	for k > 1 && float64(k-1)/fn >= tpr {
		k--
	}
	for k < n && float64(k)/fn < tpr {
		k++
	}
	s := sortedDesc(in)
	return s[k-1]
}

// FPRAt95TPR returns FPRAtTPR(in, out, 0.95): the fraction of OOD examples
// whose score is at least the threshold that retains at least 95% of the
// in-distribution examples.
func FPRAt95TPR(in, out []float64) float64 {
	return FPRAtTPR(in, out, 0.95)
}

// ROC returns the full ROC curve with in-distribution as the positive
// class, in the style of scikit-learn's roc_curve(y_in, score,
// drop_intermediate=False). The first point is (fpr, tpr) = (0, 0), the
// operating point that accepts nothing, and thresholds[0] is the sentinel
// +Inf. For i > 0, thresholds[i] runs over the distinct scores of both
// sets in decreasing order and fpr[i] and tpr[i] are the fractions of OOD
// and in-distribution scores that are >= thresholds[i]. Both fpr and tpr
// are non-decreasing and end at 1, and the trapezoidal area under
// (fpr, tpr) equals AUROC. ROC returns nil slices if either set is empty
// or any score is NaN.
func ROC(in, out []float64) (fpr, tpr, thresholds []float64) {
	if !valid(in, out) {
		return nil, nil, nil
	}
	a := sortedDesc(in)
	b := sortedDesc(out)
	fpr = []float64{0}
	tpr = []float64{0}
	thresholds = []float64{math.Inf(1)}
	ni, no := float64(len(a)), float64(len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var t float64
		switch {
		case i == len(a):
			t = b[j]
		case j == len(b):
			t = a[i]
		default:
			t = max(a[i], b[j])
		}
		for i < len(a) && a[i] >= t {
			i++
		}
		for j < len(b) && b[j] >= t {
			j++
		}
		thresholds = append(thresholds, t)
		tpr = append(tpr, float64(i)/ni)
		fpr = append(fpr, float64(j)/no)
	}
	return fpr, tpr, thresholds
}

// AcceptThreshold returns the log-likelihood threshold (for any score,
// higher = more in-distribution) that accepts at least the fraction tpr
// of the in-distribution scores in, under the rule "score >= threshold":
// the k-th largest score of in, where k is the smallest integer with
// k/len(in) >= tpr (compared exactly as computed in float64). For tpr =
// 0.95 this is a 5th percentile of in: the largest t with at least 95% of
// in at or above t; no interpolation between scores is done. It is the
// threshold FPRAtTPR uses, so FPRAtTPR(in, out, tpr) is the fraction of
// out at or above AcceptThreshold(in, tpr). AcceptThreshold returns an
// error wrapping ErrEmpty or ErrNaNScore for an empty set or a NaN score,
// and an error if tpr is not in (0, 1].
func AcceptThreshold(in []float64, tpr float64) (float64, error) {
	if err := check("in-distribution", in); err != nil {
		return 0, fmt.Errorf("ood: calibrating a threshold: %w", err)
	}
	if !(tpr > 0 && tpr <= 1) {
		return 0, fmt.Errorf("ood: calibrating a threshold: tpr %v not in (0, 1]", tpr)
	}
	return acceptThreshold(in, tpr), nil
}
