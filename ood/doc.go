// Package ood computes out-of-distribution (OOD) detection metrics from
// per-example scores.
//
// # Convention
//
// Every function in this package takes two score slices, in (scores of
// in-distribution examples) and out (scores of OOD examples). A HIGHER
// score means MORE in-distribution: the score is typically a model
// log-likelihood log p(x). The in-distribution set is the POSITIVE class.
// This is the convention of the normalizing-flow OOD literature and of
// scikit-learn called as
//
//	y := append(ones(len(in)), zeros(len(out))...)
//	s := append(in, out...)
//	roc_auc_score(y, s)              // AUROC
//	average_precision_score(y, s)    // AUPRIn
//	average_precision_score(1-y, -s) // AUPROut
//
// OpenOOD (openood/evaluators/metrics.py in recent versions) uses the opposite
// convention: it treats OOD as the positive class and negates the
// confidence score before calling scikit-learn. AUROC is invariant under
// swapping both the positive class and the sign of the score, so AUROC
// values agree. FPRAt95TPR does not: here it is the fraction of OOD
// examples accepted when 95% of in-distribution examples are accepted,
// whereas OpenOOD reports the fraction of in-distribution examples
// flagged when 95% of OOD examples are flagged. OpenOOD also integrates
// the precision-recall curve with the trapezoidal rule, while AUPRIn and
// AUPROut here are step-wise average precision, so AUPR values can differ
// slightly from OpenOOD's even on the same data.
//
// # Special values
//
// Scores of -Inf are legitimate (a log-likelihood of an impossible
// example) and rank below every finite score; +Inf ranks above every
// finite score; equal infinities are ties. NaN is not a valid score: the
// metric functions (AUROC, AUPRIn, AUPROut, FPRAtTPR, FPRAt95TPR) return
// NaN if any score is NaN or if either slice is empty, and Evaluate
// returns an error wrapping ErrNaNScore or ErrEmpty in those cases.
//
// All functions treat their inputs as read-only; they sort copies.
package ood
