package ood_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/flowood/flowood/ood"
)

func ExampleAUROC() {
	// Log-likelihoods: in-distribution examples should score higher.
	in := []float64{0.35, 0.8}
	out := []float64{0.1, 0.4}
	fmt.Printf("%.4f\n", ood.AUROC(in, out))
	// Output: 0.7500
}

func ExampleFPRAt95TPR() {
	in := []float64{-1, -2, -3, -4, -5, -6, -7, -8, -9, -10,
		-11, -12, -13, -14, -15, -16, -17, -18, -19, -20}
	out := []float64{-19.5, -30, -40, -50}
	// Retaining 19 of 20 in-distribution examples needs threshold -19,
	// which rejects every OOD example.
	fmt.Println(ood.FPRAt95TPR(in, out))
	// Output: 0
}

func ExampleEvaluate() {
	in := []float64{0.35, 0.8}
	out := []float64{0.1, 0.4}
	r, err := ood.Evaluate(in, out)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
	// Output: {"auroc":0.75,"aupr_in":0.8333333333333333,"aupr_out":0.8333333333333333,"fpr_at_95_tpr":0.5,"n_in":2,"n_out":2}
}

func ExampleBootstrap() {
	in := []float64{2.1, 1.7, 3.0, 0.4, 2.2, 1.9, 2.8, 1.1}
	out := []float64{0.3, 1.2, -0.5, 0.9, 1.8, 0.0, -1.2, 0.6}
	lo, hi := ood.Bootstrap(in, out, ood.AUROC, 1000, rand.New(rand.NewPCG(1, 2)))
	fmt.Println(lo <= ood.AUROC(in, out), ood.AUROC(in, out) <= hi)
	// Output: true true
}
