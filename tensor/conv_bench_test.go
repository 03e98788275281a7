package tensor

import (
	"fmt"
	"testing"

	"github.com/flowood/flowood/kernels"
)

// BenchmarkConv2D times 3x3 "same" convolutions of NHWC batches, forward
// and forward+backward (input and weight gradients), reporting GFLOP/s of
// the convolution arithmetic (2·N·H·W·9·Cin·Cout per pass; backward is two
// such passes).
func BenchmarkConv2D(b *testing.B) {
	for _, c := range []struct{ n, h, cin, cout int }{
		{64, 28, 64, 64}, // the conv GEMM shape 50176x576x64
		{64, 28, 16, 16}, // cpu preset, first scale
		{64, 14, 32, 32}, // cpu preset, second scale
		{64, 28, 2, 16},  // st-network input convolution
	} {
		rng := NewRNG(1)
		x := Randn(rng, c.n, c.h, c.h, c.cin).SetRequiresGrad(true)
		w := Randn(rng, 3, 3, c.cin, c.cout).SetRequiresGrad(true)
		flops := kernels.SgemmFLOPs(c.n*c.h*c.h, c.cout, 9*c.cin)
		name := fmt.Sprintf("n%d_%dx%d_%dto%d", c.n, c.h, c.h, c.cin, c.cout)
		b.Run(name+"/forward", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p := GradFree()
				Conv2D(p.Input(x), w, 1)
				p.Close()
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(name+"/forward+backward", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				x.Grad, w.Grad = nil, nil
				Backward(Sum(Conv2D(x, w, 1)))
			}
			b.ReportMetric(3*flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
