package tensor

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/kernels"
)

// BatchNormStats holds a batch-norm layer's running statistics, updated in
// training mode as running = (1-momentum)*running + momentum*batch, with the
// unbiased batch variance (as PyTorch does).
type BatchNormStats struct {
	Mean, Var []float32
	Momentum  float64
	Eps       float64
}

// BatchNorm normalises x per channel (the last dimension) and applies the
// affine map gamma*xhat + beta (gamma, beta of shape [C]).
//
// In training mode (train true) xhat uses the biased mean and variance of
// this batch over all other dimensions, and stats is updated when not nil.
// In evaluation mode xhat uses stats' running mean and variance, so each
// example is transformed independently. Statistics accumulate in float64.
func BatchNorm(x, gamma, beta *Tensor, stats *BatchNormStats, train bool) *Tensor {
	c := channelOp("BatchNorm", x, gamma)
	channelOp("BatchNorm", x, beta)
	rows := len(x.Data) / c
	eps := stats.Eps
	mean := make([]float64, c)
	invStd := make([]float64, c)
	if train {
		if rows < 2 {
			panic(fmt.Sprintf("tensor: BatchNorm in training mode over %v needs at least 2 values per channel", x.Shape))
		}
		sum, sq := columnMoments(x.Data, c, nil)
		for j := range mean {
			m := sum[j] / float64(rows)
			v := math.Max(sq[j]/float64(rows)-m*m, 0)
			mean[j] = m
			invStd[j] = 1 / math.Sqrt(v+eps)
			if stats.Mean != nil {
				mom := stats.Momentum
				stats.Mean[j] = float32((1-mom)*float64(stats.Mean[j]) + mom*m)
				stats.Var[j] = float32((1-mom)*float64(stats.Var[j]) + mom*v*float64(rows)/float64(rows-1))
			}
		}
	} else {
		for j := range mean {
			mean[j] = float64(stats.Mean[j])
			invStd[j] = 1 / math.Sqrt(float64(stats.Var[j])+eps)
		}
	}
	// y = x*a + b per channel.
	a := make([]float32, c)
	b := make([]float32, c)
	for j := range a {
		a[j] = float32(float64(gamma.Data[j]) * invStd[j])
		b[j] = float32(float64(beta.Data[j]) - mean[j]*float64(gamma.Data[j])*invStd[j])
	}
	out := newOut(x.Shape)
	kernels.ParallelFor(rows, grain/c+1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xs, ys := x.Data[r*c:(r+1)*c], out.Data[r*c:(r+1)*c]
			for j := range ys {
				ys[j] = xs[j]*a[j] + b[j]
			}
		}
	})
	record(out, func() {
		gy := out.Grad
		// sums of gy and of gy*xhat per channel
		sumG, sumGX := columnMoments(gy, c, x.Data)
		for j := 0; j < c; j++ {
			// sum gy*xhat = invStd*(sum gy*x - mean*sum gy)
			sumGX[j] = invStd[j] * (sumGX[j] - mean[j]*sumG[j])
		}
		if needs(gamma) {
			gg := gamma.grad()
			for j := range gg {
				gg[j] += float32(sumGX[j])
			}
		}
		if needs(beta) {
			gb := beta.grad()
			for j := range gb {
				gb[j] += float32(sumG[j])
			}
		}
		if needs(x) {
			gx := x.grad()
			k1 := make([]float32, c) // coefficient of gy
			k2 := make([]float32, c) // coefficient of xhat
			k3 := make([]float32, c) // constant
			for j := 0; j < c; j++ {
				g := float64(gamma.Data[j]) * invStd[j]
				k1[j] = float32(g)
				if train {
					n := float64(rows)
					// dx = g*(gy - sumG/n - xhat*sumGX/n), xhat = (x-mean)*invStd
					k2[j] = float32(-g * sumGX[j] / n * invStd[j])
					k3[j] = float32(-g*sumG[j]/n + g*sumGX[j]/n*invStd[j]*mean[j])
				}
			}
			kernels.ParallelFor(rows, grain/c+1, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					xs, gs, ds := x.Data[r*c:(r+1)*c], gy[r*c:(r+1)*c], gx[r*c:(r+1)*c]
					for j := range ds {
						ds[j] += k1[j]*gs[j] + k2[j]*xs[j] + k3[j]
					}
				}
			})
		}
	}, x, gamma, beta)
	return out
}

// columnMoments returns per-column sums of v and of v*w (of v*v when w is
// nil) for row-major data with c columns, in float64, in parallel.
func columnMoments(v []float32, c int, w []float32) (sum, prod []float64) {
	rows := len(v) / c
	parts := kernels.Workers()
	sums := make([][]float64, parts)
	prods := make([][]float64, parts)
	chunk := (rows + parts - 1) / parts
	kernels.ParallelFor(parts, 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			s, q := make([]float64, c), make([]float64, c)
			// accumulate in float64: the product of two float32 values is
			// exact in float64, and float32 partial sums lose the variance
			// (E[x²]-E[x]²) when |mean| >> std
			r1 := min((p+1)*chunk, rows)
			for r := p * chunk; r < r1; r++ {
				vs := v[r*c : (r+1)*c]
				ws := vs
				if w != nil {
					ws = w[r*c : (r+1)*c]
				}
				for j, a := range vs {
					s[j] += float64(a)
					q[j] += float64(a) * float64(ws[j])
				}
			}
			sums[p], prods[p] = s, q
		}
	})
	sum, prod = make([]float64, c), make([]float64, c)
	for p := range sums {
		if sums[p] == nil {
			continue
		}
		for j := 0; j < c; j++ {
			sum[j] += sums[p][j]
			prod[j] += prods[p][j]
		}
	}
	return sum, prod
}
