package detector

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkScore times Score of 64 random 28x28 images on a small
// RealNVP, with and without input complexity (a PNG encoding per image).
func BenchmarkScore(b *testing.B) {
	run := b.TempDir()
	if _, err := makeRun(run, "mnist", 28, 28, 1); err != nil {
		b.Fatal(err)
	}
	imgs := grayImages(1, 64, 28, 28)
	for _, complexity := range []bool{false, true} {
		b.Run(fmt.Sprintf("complexity=%v", complexity), func(b *testing.B) {
			det, err := LoadWith(run, Options{Complexity: complexity})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := det.Score(context.Background(), imgs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(64*b.N)/b.Elapsed().Seconds(), "img/s")
		})
	}
}
