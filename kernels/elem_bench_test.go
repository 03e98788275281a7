package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkElem reports GB/s (bytes read plus bytes written per second)
// for each elementwise kernel as BenchmarkElem/<op>/<kernels>/n=<values>,
// single-threaded, for every kernel set here. The sizes are an activation
// of the cpu preset's first scale in L2 (16K values, 64 KB) and a whole one
// (64×28×28×16 values, 3.2 MB), with 16 channels for the per-channel
// kernels.
func BenchmarkElem(b *testing.B) {
	defer SetMicroKernel("auto")
	const c = 16
	rng := rand.New(rand.NewPCG(7, 7))
	type op struct {
		name   string
		floats int // float32 values read or written per element
		run    func(n int, s [5][]float32)
	}
	k := elemInput(rng, c, 0, false)
	sum, prod := make([]float64, c), make([]float64, c)
	ops := []op{
		{"AddTo", 3, func(n int, s [5][]float32) { AddTo(s[0], s[1]) }},
		{"Add", 3, func(n int, s [5][]float32) { Add(s[0], s[1], s[2]) }},
		{"ReluForward", 2, func(n int, s [5][]float32) { ReluForward(s[0], s[1]) }},
		{"ReluBackward", 4, func(n int, s [5][]float32) { ReluBackward(s[0], s[1], s[2]) }},
		{"AffineRows", 2, func(n int, s [5][]float32) { AffineRows(s[0], s[1], k, k) }},
		{"AffineReluRows", 2, func(n int, s [5][]float32) { AffineReluRows(s[0], s[1], k, k) }},
		{"AffineGradRows", 4, func(n int, s [5][]float32) { AffineGradRows(s[0], s[1], s[2], k, k, k, true) }},
		{"AffineReluGradRows", 5, func(n int, s [5][]float32) { AffineReluGradRows(s[0], s[1], s[2], s[3], k, k, k, true) }},
		{"ColumnSums", 1, func(n int, s [5][]float32) { ColumnSums(sum, s[0]) }},
		{"ColumnMoments", 2, func(n int, s [5][]float32) { ColumnMoments(sum, prod, s[0], s[1]) }},
		{"ColumnMomentsRelu", 3, func(n int, s [5][]float32) { ColumnMomentsRelu(sum, prod, s[0], s[1], s[2]) }},
	}
	for _, o := range ops {
		b.Run(o.name, func(b *testing.B) {
			for _, name := range MicroKernels() {
				b.Run(name, func(b *testing.B) {
					for _, n := range []int{1 << 14, 64 * 28 * 28 * 16} {
						b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
							if !SetMicroKernel(name) {
								b.Skipf("kernels %q not available", name)
							}
							var s [5][]float32
							for i := range s {
								s[i] = elemInput(rng, n, 0, false)
							}
							for b.Loop() {
								o.run(n, s)
							}
							bytes := float64(4*o.floats*n) * float64(b.N)
							b.ReportMetric(bytes/b.Elapsed().Seconds()/1e9, "GB/s")
						})
					}
				})
			}
		})
	}
}
