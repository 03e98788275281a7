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
	// Group, when not nil, makes training mode normalise with the
	// statistics of the whole batch of which x is the part of member Rank
	// (data-parallel training): the sums of the forward and backward
	// passes are combined across the group, gamma's and beta's gradients
	// are this part's share, and only rank 0 updates Mean and Var.
	Group *Group
	Rank  int
}

// BatchNorm normalises x per channel (the last dimension) and applies the
// affine map gamma*xhat + beta (gamma, beta of shape [C]).
//
// In training mode (train true) xhat uses the biased mean and variance of
// this batch over all other dimensions, and stats is updated when not nil.
// In evaluation mode xhat uses stats' running mean and variance, so each
// example is transformed independently. Statistics accumulate in float64.
func BatchNorm(x, gamma, beta *Tensor, stats *BatchNormStats, train bool) *Tensor {
	return batchNorm("BatchNorm", x, gamma, beta, stats, train, false)
}

// BatchNormReLU returns Relu(BatchNorm(x, gamma, beta, stats, train)) as
// one operation, with the same values: the forward pass normalises, maps
// and rectifies in one sweep over x, and the backward pass masks the output
// gradient by the ReLU while it reduces and applies it, so no intermediate
// tensor or gradient exists.
func BatchNormReLU(x, gamma, beta *Tensor, stats *BatchNormStats, train bool) *Tensor {
	return batchNorm("BatchNormReLU", x, gamma, beta, stats, train, true)
}

// batchNorm implements BatchNorm, followed by ReLU when relu is set.
func batchNorm(op string, x, gamma, beta *Tensor, stats *BatchNormStats, train, relu bool) *Tensor {
	p := passOf(x, gamma, beta)
	c := channelOp(op, x, gamma)
	channelOp(op, x, beta)
	rows := len(x.Data) / c
	eps := stats.Eps
	mean := make([]float64, c)
	invStd := make([]float64, c)
	// total is the number of rows of the whole batch, x's alone without
	// a group.
	total := float64(rows)
	if train {
		sum, sq := columnMoments(p.par(), x.Data, nil, nil, c, true)
		if stats.Group != nil {
			sum, sq, total = groupSums(stats, sum, sq, total)
		}
		if total < 2 {
			panic(fmt.Sprintf("tensor: %s in training mode over %v needs at least 2 values per channel", op, x.Shape))
		}
		update := stats.Mean != nil && (stats.Group == nil || stats.Rank == 0)
		for j := range mean {
			m := sum[j] / total
			v := math.Max(sq[j]/total-m*m, 0)
			mean[j] = m
			invStd[j] = 1 / math.Sqrt(v+eps)
			if update {
				mom := stats.Momentum
				stats.Mean[j] = float32((1-mom)*float64(stats.Mean[j]) + mom*m)
				stats.Var[j] = float32((1-mom)*float64(stats.Var[j]) + mom*v*total/(total-1))
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
	out := newOut(p, x.Shape)
	apply := kernels.AffineRows
	if relu {
		apply = kernels.AffineReluRows
	}
	p.par().ParallelFor(rows, grain/c+1, func(lo, hi int) {
		apply(out.Data[lo*c:hi*c], x.Data[lo*c:hi*c], a, b)
	})
	record(out, func() {
		// g is the gradient of the affine map's output: gy, masked by
		// the ReLU (out > 0) when there is one.
		gy := out.Grad
		var y []float32
		if relu {
			y = out.Data
		}
		// sums of g and of g*x per channel
		sumG, sumGX := columnMoments(p.par(), gy, y, x.Data, c, true)
		for j := 0; j < c; j++ {
			// sum g*xhat = invStd*(sum g*x - mean*sum g)
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
		if needs(x) && train && stats.Group != nil {
			// dx needs the sums over the whole batch.
			sumG, sumGX, _ = groupSums(stats, sumG, sumGX, 0)
		}
		if needs(x) {
			gx, fresh := x.gradOut()
			k1 := make([]float32, c) // coefficient of g
			k2 := make([]float32, c) // coefficient of x
			k3 := make([]float32, c) // constant
			for j := 0; j < c; j++ {
				g := float64(gamma.Data[j]) * invStd[j]
				k1[j] = float32(g)
				if train {
					n := total
					// dx = g*(gy - sumG/n - xhat*sumGX/n), xhat = (x-mean)*invStd
					k2[j] = float32(-g * sumGX[j] / n * invStd[j])
					k3[j] = float32(-g*sumG[j]/n + g*sumGX[j]/n*invStd[j]*mean[j])
				}
			}
			p.par().ParallelFor(rows, grain/c+1, func(lo, hi int) {
				s, e := lo*c, hi*c
				if relu {
					kernels.AffineReluGradRows(gx[s:e], gy[s:e], y[s:e], x.Data[s:e], k1, k2, k3, !fresh)
				} else {
					kernels.AffineGradRows(gx[s:e], gy[s:e], x.Data[s:e], k1, k2, k3, !fresh)
				}
			})
		}
	}, x, gamma, beta)
	return out
}

// groupSums returns the sums of a and b and of the count n over the
// members of stats.Group.
func groupSums(stats *BatchNormStats, a, b []float64, n float64) ([]float64, []float64, float64) {
	c := len(a)
	v := make([]float64, 2*c+1)
	copy(v, a)
	copy(v[c:], b)
	v[2*c] = n
	stats.Group.AllSum(stats.Rank, v)
	return v[:c], v[c : 2*c], v[2*c]
}

// columnMoments returns, for row-major v with c columns, the per-column
// sums of g and, when prod is set, of g*w (of g*g when w is nil), where g is
// v, or v masked by y > 0 (the ReLU's backward mask) when y is not nil. It
// accumulates in float64 (the product of two float32 values is exact in
// float64, and float32 partial sums lose the variance E[x²]-E[x]² when
// |mean| >> std), in parallel on up to par goroutines. The rows are
// summed in parts fixed by their number alone, so that the sums do not
// depend on par: two parts from 4096 rows (the cores' share when the
// operation runs on two; measured: eight parts made the data-parallel
// training step's column sums 50% slower, and the step 5%).
func columnMoments(par kernels.Par, v, y, w []float32, c int, prod bool) (sum, sq []float64) {
	rows := len(v) / c
	parts := min(2, max(1, rows/4096))
	sums := make([][]float64, parts)
	prods := make([][]float64, parts)
	chunk := (rows + parts - 1) / parts
	par.ParallelFor(parts, 1, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			r0, r1 := min(p*chunk, rows), min((p+1)*chunk, rows)
			if r0 >= r1 {
				continue
			}
			s := make([]float64, c)
			sums[p] = s
			vs := v[r0*c : r1*c]
			var ys, ws []float32
			if y != nil {
				ys = y[r0*c : r1*c]
			}
			if w != nil {
				ws = w[r0*c : r1*c]
			}
			switch {
			case !prod:
				kernels.ColumnSums(s, vs)
			case ys != nil:
				q := make([]float64, c)
				kernels.ColumnMomentsRelu(s, q, vs, ys, ws)
				prods[p] = q
			default:
				q := make([]float64, c)
				kernels.ColumnMoments(s, q, vs, ws)
				prods[p] = q
			}
		}
	})
	sum = make([]float64, c)
	if prod {
		sq = make([]float64, c)
	}
	for p := range sums {
		if sums[p] == nil {
			continue
		}
		for j := 0; j < c; j++ {
			sum[j] += sums[p][j]
			if prod {
				sq[j] += prods[p][j]
			}
		}
	}
	return sum, sq
}
