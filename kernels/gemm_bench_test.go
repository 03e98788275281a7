package kernels

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// benchKernels selects the micro-kernels BenchmarkSgemm measures.
var benchKernels = flag.String("sgemm.kernels", "auto",
	`comma-separated micro-kernels for BenchmarkSgemm: "auto" (the default choice), "all", or names from MicroKernels`)

// gemmShape is one benchmarked product.
type gemmShape struct {
	name           string
	transA, transB bool
	m, n, k        int
}

// benchShapes are the GEMMs of 3×3 and 1×1 convolutions over a batch of
// 64 28×28 NHWC images (M = 64·28·28 = 50176): the forward product, the
// input gradient (NT) and the weight gradient (TN) for 64 channels, and
// forward products for fewer channels.
var benchShapes = []gemmShape{
	{"conv3x3_c64_NN_50176x64x576", false, false, 50176, 64, 576},
	{"conv3x3_c64_dA_NT_50176x576x64", false, true, 50176, 576, 64},
	{"conv3x3_c64_dB_TN_576x64x50176", true, false, 576, 64, 50176},
	{"conv3x3_c32_NN_50176x32x288", false, false, 50176, 32, 288},
	{"conv3x3_c16_NN_50176x16x144", false, false, 50176, 16, 144},
	{"conv3x3_c4_NN_50176x16x36", false, false, 50176, 16, 36},
	{"conv3x3_c64_NN_50176x128x576", false, false, 50176, 128, 576},
	{"conv1x1_c64_NN_50176x64x64", false, false, 50176, 64, 64},
	{"conv3x3_c32_dB_TN_288x32x50176", true, false, 288, 32, 50176},
	{"small_NN_64x16x36", false, false, 64, 16, 36},
	{"small_NN_64x64x576", false, false, 64, 64, 576},
	{"small_NN_256x32x288", false, false, 256, 32, 288},
	{"small_NN_1024x64x576", false, false, 1024, 64, 576},
	{"small_TN_576x64x1024", true, false, 576, 64, 1024},
	{"small_NT_1024x576x64", false, true, 1024, 576, 64},
	// App. K's st-network bottleneck (28x28x16 -> 100 -> 28x28x16) at a
	// replica's batch of 32: down and up projections and their input
	// gradients, where M is small and packing the large B dominates.
	{"bottleneck_down_NN_32x100x12544", false, false, 32, 100, 12544},
	{"bottleneck_down_dA_NT_32x12544x100", false, true, 32, 12544, 100},
	{"bottleneck_up_NN_32x12544x100", false, false, 32, 12544, 100},
	{"bottleneck_up_dA_NT_32x100x12544", false, true, 32, 100, 12544},
	// the same in evaluation, 8 images a part, and at 16
	{"bottleneck_down_NN_8x100x12544", false, false, 8, 100, 12544},
	{"bottleneck_up_NN_8x12544x100", false, false, 8, 12544, 100},
	{"bottleneck_down_NN_16x100x12544", false, false, 16, 100, 12544},
	{"bottleneck_up_NN_16x12544x100", false, false, 16, 12544, 100},
}

// benchKernelNames returns the micro-kernels named by -sgemm.kernels.
func benchKernelNames(b *testing.B) []string {
	switch *benchKernels {
	case "auto", "":
		return []string{MicroKernel()}
	case "all":
		return MicroKernels()
	}
	var names []string
	for _, name := range strings.Split(*benchKernels, ",") {
		names = append(names, strings.TrimSpace(name))
	}
	return names
}

// BenchmarkSgemm reports GFLOP/s for the convolution GEMM shapes, as
// BenchmarkSgemm/<shape>/<kernel>, with alpha = 1 and beta = 0. It also
// reports GFLOP/cpu-s, the work done per second of CPU time used by the
// process, which is robust to other load on a shared machine; with w busy
// workers the wall-clock figure approaches w times it.
func BenchmarkSgemm(b *testing.B) {
	defer SetMicroKernel("auto")
	rng := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			a := randSlice(rng, s.m*s.k)
			bm := randSlice(rng, s.k*s.n)
			c := make([]float32, s.m*s.n)
			lda, ldb := s.k, s.n
			if s.transA {
				lda = s.m
			}
			if s.transB {
				ldb = s.k
			}
			for _, name := range benchKernelNames(b) {
				b.Run(name, func(b *testing.B) {
					if !SetMicroKernel(name) {
						b.Skipf("micro-kernel %q not available", name)
					}
					Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n) // warm up buffers and pages
					cpu0 := processCPUTime()
					for b.Loop() {
						Sgemm(s.transA, s.transB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, s.n)
					}
					flops := SgemmFLOPs(s.m, s.n, s.k) * float64(b.N)
					b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
					// Throughput per CPU-second of this process: a figure that
					// other load on the machine disturbs less than wall time.
					if cpu := processCPUTime() - cpu0; cpu > 20*time.Millisecond {
						b.ReportMetric(flops/cpu.Seconds()/1e9, "GFLOP/cpu-s")
					}
				})
			}
		})
	}
}

// BenchmarkMicroKernel reports the single-core GFLOP/s of each micro-kernel
// on a packed, cache-resident tile: the ceiling for Sgemm.
func BenchmarkMicroKernel(b *testing.B) {
	for _, kn := range kernelList {
		for _, v := range kn.variants() {
			if v == nil {
				continue
			}
			b.Run(fmt.Sprintf("%s_%dx%d", v.name, v.mr, v.nr), func(b *testing.B) {
				const kc = 256
				rng := rand.New(rand.NewPCG(2, 2))
				a := randSlice(rng, kc*v.mr)
				bp := randSlice(rng, kc*v.nr)
				c := make([]float32, v.mr*v.nr)
				for b.Loop() {
					v.fn(kc, a, 1, v.mr, bp, c, v.nr, 1, 1)
				}
				b.ReportMetric(SgemmFLOPs(v.mr, v.nr, kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
