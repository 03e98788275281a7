package tensor

import (
	"github.com/flowood/flowood/kernels"
)

// This file computes 3x3 same convolutions (pad 1, stride 1) with
// Winograd's minimal filtering algorithm F(2x2, 3x3) (Lavin and Gray,
// "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// The output is cut into 2x2 tiles. Output tile (th, tw) of image n needs
// the 4x4 input patch d at rows 2th-1..2th+2 and columns 2tw-1..2tw+2
// (zero outside the image). For one input channel, one output channel and
// their 3x3 kernel g,
//
//	Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A
//
//	     ⎡1  0 -1  0⎤       ⎡1   0   0⎤       ⎡1  1  1  0⎤
//	Bᵀ = ⎢0  1  1  0⎥   G = ⎢½   ½   ½⎥   Aᵀ = ⎣0  1 -1 -1⎦
//	     ⎢0 -1  1  0⎥       ⎢½  -½   ½⎥
//	     ⎣0  1  0 -1⎦       ⎣0   0   1⎦
//
// exactly (in exact arithmetic) the 2x2 block of the cross-correlation.
// Summed over input channels, the 16 elementwise products become 16
// matrix products, one per position ξ of the 4x4 transformed tile:
//
//	M_ξ [tiles, Cout] = V_ξ [tiles, Cin] · U_ξ [Cin, Cout],
//
// where V_ξ holds the transformed input tiles and U_ξ the transformed
// kernels: 16·Cin·Cout multiply-adds per tile of 4 outputs instead of
// 36·Cin·Cout, 2.25 times fewer; the transforms are additions linear in
// Cin or Cout.
//
// Gradients. The input gradient of a same convolution is the same
// convolution of the output gradient with the kernel flipped and its
// channels transposed, computed by the same code. The weight gradient is
// the adjoint of the forward map: per tile dM = A dY Aᵀ (dY the 2x2 output
// gradient, zero beyond the image), dU_ξ = Σ_tiles V_ξᵀ dM_ξ, and
// dW = Gᵀ dU G per channel pair.
//
// F(4x4, 3x3) works the same way on 4x4 output tiles and 6x6 input
// patches, with the 6x6 Bᵀ, 6x3 G and 4x6 Aᵀ of Lavin and Gray
// (kernels.WinogradTiles shows them): 36 products of 36·Cin·Cout
// multiply-adds per 16 outputs, 4 times fewer than direct convolution. Its
// weight transforms, with G's sixths and twenty-fourths, are computed in
// float64 (wino4Weights, wino4WeightGrad).
//
// The tiles, in (n, th, tw) order, are processed in blocks small enough
// that a block's transformed input and products stay in the core's L2
// cache; workers take contiguous runs of blocks, and every matrix product
// runs on its worker's goroutine (kernels.SgemmStridedSerial).

// winogradTile returns the output tile side of the Winograd algorithm
// Conv2D computes g with, both passes, or 0 for none: 3x3 kernels with
// padding 1 and at least 16 input and output channels (or as forced by
// forceConv: convWinograd2 forces F(2x2, 3x3), convWinograd4 F(4x4, 3x3)). Below 16 channels
// the transforms cost more than the multiplications they save. F(4x4,
// 3x3) needs 1.78x fewer multiplications than F(2x2, 3x3) but wastes the
// border of images whose sides are not multiples of 4 (31% at 14x14) and
// has larger transforms and rounding errors; it is taken for images whose
// sides are multiples of 4, from 16 up.
//
// Measured with BenchmarkConv2DPaths (batch 64, 2 cores, AVX-512, min of
// 3-5 runs, forward+backward, F(2x2, 3x3) vs the better of implicit GEMM
// and im2col): 28x28 16->16 6.8 vs 7.7 ms, 28x28 32->32 15.0 vs 21.5 ms,
// 14x14 32->32 4.1 vs 6.3 ms, 14x14 48->48 10.5 vs 13.6 ms, 14x14 64->64
// 12.5 vs 19.6 ms, 7x7 128->128 16.0 vs 18.2 ms; but 28x28 8->8 8.8 vs 6.0
// ms. Forward alone: 14x14 32->32 0.91 vs 1.63 ms, 28x28 16->16 1.37 vs
// 1.71. F(4x4, 3x3) vs F(2x2, 3x3), forward+backward: 28x28 16->16 5.5 vs
// 7.0 ms, 28x28 32->32 11.9 vs 15.2 ms, 28x28 64->64 40.1 vs 45.0 ms; but
// 14x14 32->32 4.6 vs 3.9 ms, 14x14 64->64 15.4 vs 12.9 ms, 7x7 128->128
// 20.2 vs 17.1 ms.
func winogradTile(g *convGeom) int {
	if g.KH != 3 || g.KW != 3 || g.Pad != 1 {
		return 0
	}
	switch forceConv {
	case convWinograd2:
		return 2
	case convWinograd4:
		return 4
	case convAuto:
		switch {
		case g.Cin < 16 || g.Cout < 16:
		case g.H%4 == 0 && g.W%4 == 0 && g.H >= 16 && g.W >= 16:
			return 4
		default:
			return 2
		}
	}
	return 0
}

// winoBlockTiles returns the number of tiles per block for cin input and
// cout output channels and tiles of the given number of positions: the
// transformed input and the products of a block, positions·(cin+cout)
// values per tile, take about 512 KiB, and the count is a multiple of 28,
// the row tiles of the AVX-512 micro-kernels.
func winoBlockTiles(cin, cout, positions int) int {
	return max(28, min(448, (1<<17)/(positions*(cin+cout))/28*28))
}

// winoBiasPos returns the position of the transformed tile that a bias is
// added at: (1, 1), whose column of Aᵀ is all ones, for F(2x2, 3x3) (4x4
// tiles) and F(4x4, 3x3) (6x6 tiles).
func winoBiasPos(m int) int { return (m+2)*1 + 1 }

// winoStride returns the distance, in values, between the 16 positions of
// a block of transformed tiles holding n values per position: n rounded
// up to whole 64-byte cache lines, and to an odd number of them, so that
// the 16 positions of one tile fall into 16 different L1 cache sets. With
// a stride of an even number of lines (112 tiles of 32 channels: 224
// lines) they fell into two sets and the transforms ran 3x slower.
func winoStride(n int) int {
	lines := (n + 15) / 16
	if lines%2 == 0 {
		lines++
	}
	return 16 * lines
}

// winoWeights writes U [16, cin, cout] = G g Gᵀ for every channel pair of
// the HWIO weights w [3, 3, cin, cout]. It runs over whole rows of channel
// pairs, a few at a time: the nine taps of one pair are cin·cout values
// apart, often a multiple of 4 KiB, and walking all of them at once pair
// by pair thrashed the cache sets they share.
func winoWeights(u, w []float32, cin, cout int) {
	n := cin * cout
	w, u = w[:9*n], u[:16*n]
	t := alloc(12 * n) // G g: [4, 3, n]
	defer release(t)
	for b := 0; b < 3; b++ {
		g0, g1, g2 := w[b*n:(b+1)*n], w[(3+b)*n:(4+b)*n], w[(6+b)*n:(7+b)*n]
		t0, t1, t2, t3 := t[b*n:(b+1)*n], t[(3+b)*n:(4+b)*n], t[(6+b)*n:(7+b)*n], t[(9+b)*n:(10+b)*n]
		for i := range g0 {
			t0[i] = g0[i]
			t1[i] = 0.5 * (g0[i] + g1[i] + g2[i])
			t2[i] = 0.5 * (g0[i] - g1[i] + g2[i])
			t3[i] = g2[i]
		}
	}
	for a := 0; a < 4; a++ {
		g0, g1, g2 := t[3*a*n:(3*a+1)*n], t[(3*a+1)*n:(3*a+2)*n], t[(3*a+2)*n:(3*a+3)*n]
		u0, u1, u2, u3 := u[4*a*n:(4*a+1)*n], u[(4*a+1)*n:(4*a+2)*n], u[(4*a+2)*n:(4*a+3)*n], u[(4*a+3)*n:(4*a+4)*n]
		for i := range g0 {
			u0[i] = g0[i]
			u1[i] = 0.5 * (g0[i] + g1[i] + g2[i])
			u2[i] = 0.5 * (g0[i] - g1[i] + g2[i])
			u3[i] = g2[i]
		}
	}
}

// winoWeightGrad adds dW = Gᵀ dU G, the weight gradient for the gradient
// du [16, cin, cout] of the transformed kernels, into the HWIO gradient
// gw [3, 3, cin, cout], by whole rows of channel pairs as winoWeights.
func winoWeightGrad(gw, du []float32, cin, cout int) {
	n := cin * cout
	gw, du = gw[:9*n], du[:16*n]
	s := alloc(12 * n) // Gᵀ dU: [3, 4, n]
	defer release(s)
	for j := 0; j < 4; j++ {
		d0, d1, d2, d3 := du[j*n:(j+1)*n], du[(4+j)*n:(5+j)*n], du[(8+j)*n:(9+j)*n], du[(12+j)*n:(13+j)*n]
		s0, s1, s2 := s[j*n:(j+1)*n], s[(4+j)*n:(5+j)*n], s[(8+j)*n:(9+j)*n]
		for i := range d0 {
			s0[i] = d0[i] + 0.5*(d1[i]+d2[i])
			s1[i] = 0.5 * (d1[i] - d2[i])
			s2[i] = 0.5*(d1[i]+d2[i]) + d3[i]
		}
	}
	for a := 0; a < 3; a++ {
		s0, s1, s2, s3 := s[4*a*n:(4*a+1)*n], s[(4*a+1)*n:(4*a+2)*n], s[(4*a+2)*n:(4*a+3)*n], s[(4*a+3)*n:(4*a+4)*n]
		w0, w1, w2 := gw[3*a*n:(3*a+1)*n], gw[(3*a+1)*n:(3*a+2)*n], gw[(3*a+2)*n:(3*a+3)*n]
		for i := range s0 {
			w0[i] += s0[i] + 0.5*(s1[i]+s2[i])
			w1[i] += 0.5 * (s1[i] - s2[i])
			w2[i] += 0.5*(s1[i]+s2[i]) + s3[i]
		}
	}
}

// wino4G is G of F(4x4, 3x3) (Lavin and Gray 2016), 6x3.
var wino4G = [6][3]float64{
	{1.0 / 4, 0, 0},
	{-1.0 / 6, -1.0 / 6, -1.0 / 6},
	{-1.0 / 6, 1.0 / 6, -1.0 / 6},
	{1.0 / 24, 1.0 / 12, 1.0 / 6},
	{1.0 / 24, -1.0 / 12, 1.0 / 6},
	{0, 0, 1},
}

// winoChunk is the number of channel pairs the F(4x4, 3x3) weight
// transforms take at a time, row by row within a chunk.
const winoChunk = 64

// wino4Weights writes U [36, cin, cout] = G g Gᵀ (F(4x4, 3x3)) for every
// channel pair of the HWIO weights w [3, 3, cin, cout], in float64 (G has
// thirds) rounded once, chunk by chunk of pairs as winoWeights does.
func wino4Weights(u, w []float32, cin, cout int) {
	n := cin * cout
	w, u = w[:9*n], u[:36*n]
	var t [6][3][winoChunk]float64 // G g
	for i0 := 0; i0 < n; i0 += winoChunk {
		cn := min(winoChunk, n-i0)
		for a := 0; a < 6; a++ {
			for b := 0; b < 3; b++ {
				row := t[a][b][:cn]
				clear(row)
				for k := 0; k < 3; k++ {
					if c := wino4G[a][k]; c != 0 {
						for i, v := range w[(3*k+b)*n+i0 : (3*k+b)*n+i0+cn] {
							row[i] += c * float64(v)
						}
					}
				}
			}
		}
		for a := 0; a < 6; a++ {
			for c := 0; c < 6; c++ {
				dst := u[(6*a+c)*n+i0 : (6*a+c)*n+i0+cn]
				for i := range dst {
					var v float64
					for b := 0; b < 3; b++ {
						v += t[a][b][i] * wino4G[c][b]
					}
					dst[i] = float32(v)
				}
			}
		}
	}
}

// wino4WeightGrad adds dW = Gᵀ dU G (F(4x4, 3x3)), the weight gradient for
// the gradient du [36, cin, cout] of the transformed kernels, into the
// HWIO gradient gw [3, 3, cin, cout], in float64, chunk by chunk.
func wino4WeightGrad(gw, du []float32, cin, cout int) {
	n := cin * cout
	gw, du = gw[:9*n], du[:36*n]
	var s [3][6][winoChunk]float64 // Gᵀ dU
	for i0 := 0; i0 < n; i0 += winoChunk {
		cn := min(winoChunk, n-i0)
		for k := 0; k < 3; k++ {
			for c := 0; c < 6; c++ {
				row := s[k][c][:cn]
				clear(row)
				for a := 0; a < 6; a++ {
					if g := wino4G[a][k]; g != 0 {
						for i, v := range du[(6*a+c)*n+i0 : (6*a+c)*n+i0+cn] {
							row[i] += g * float64(v)
						}
					}
				}
			}
		}
		for k := 0; k < 3; k++ {
			for b := 0; b < 3; b++ {
				dst := gw[(3*k+b)*n+i0 : (3*k+b)*n+i0+cn]
				for i := range dst {
					var v float64
					for c := 0; c < 6; c++ {
						v += s[k][c][i] * wino4G[c][b]
					}
					dst[i] += float32(v)
				}
			}
		}
	}
}

// winogradConv writes (or adds, when add is set) the 3x3 same convolution
// of the images x [N, H, W, cin] with HWIO weights w [3, 3, cin, cout],
// plus the per-channel bias when it is not nil, into y [N, H, W, cout].
//
// The bias is added in the transformed domain, to the products at
// position ξ = 5, (1, 1) of the 4x4 tile: column 1 of Aᵀ is all ones, so
// Aᵀ (b·e₁₁) A adds b to each of the four outputs of a tile. That costs a
// pass over one sixteenth of the products, in cache, instead of one over
// the whole output.
//
// param says that w is a parameter's data, whose transform may be cached
// in pass (PassOptions.CacheWeights), whose workers run the convolution.
func winogradConv(pass *Pass, y, x, w, bias []float32, n, h, wd, cin, cout, m int, add, param bool) {
	g := kernels.WinogradTiles{N: n, H: h, W: wd, M: m}
	np := g.Positions()
	par := pass.par()
	ub, pw, done := winoKernels(pass, w, cin, cout, m, param)
	defer done()
	bt := winoBlockTiles(cin, cout, np)
	tiles := g.Count()
	blocks := (tiles + bt - 1) / bt
	var ones []float32
	if bias != nil {
		ones = alloc(cout)
		defer release(ones)
		for i := range ones {
			ones[i] = 1
		}
	}
	par.ParallelFor(blocks, 1, func(lo, hi int) {
		vs, ms := winoStride(bt*cin), winoStride(bt*cout)
		v := alloc(np * vs)
		prod := alloc(np * ms)
		for blk := lo; blk < hi; blk++ {
			t0 := blk * bt
			t1 := min(tiles, t0+bt)
			g.Input(v, vs, x, cin, t0, t1)
			for p := 0; p < cout; p += pw {
				kernels.SgemmStridedSerial(np, false, false, t1-t0, pw, cin, 1, v, cin, vs,
					ub[p*cin:], pw, cin*cout, 0, prod[p:], cout, ms)
			}
			if bias != nil {
				bp := winoBiasPos(m) * ms
				mb := prod[bp : bp+(t1-t0)*cout]
				kernels.AffineRows(mb, mb, ones, bias)
			}
			g.Output(y, prod, ms, cout, t0, t1, add)
		}
		release(prod)
		release(v)
	})
}

// winoPanels returns the transformed kernels u [np, cin, cout] as panels
// of pw columns, [np, cout/pw, cin, pw], and pw: the width of the
// micro-kernel's tile when cout is a multiple of it above it (64 and 128
// channels on AVX-512), so that each panel's products read their B in
// place; otherwise u itself and cout. Packing the 64- and 128-column B of
// every position again for every block of tiles was a quarter of the
// paper preset's training time.
func winoPanels(par kernels.Par, u []float32, np, cin, cout int) ([]float32, int) {
	pw := kernels.TileColumns()
	if pw < 16 || cout <= pw || cout%pw != 0 {
		return u, cout
	}
	up := alloc(len(u))
	par.ParallelFor(np, 1, func(lo, hi int) {
		for xi := lo; xi < hi; xi++ {
			src, dst := u[xi*cin*cout:(xi+1)*cin*cout], up[xi*cin*cout:(xi+1)*cin*cout]
			for p := 0; p < cout; p += pw {
				for k := 0; k < cin; k++ {
					copy(dst[p*cin+k*pw:p*cin+(k+1)*pw], src[k*cout+p:k*cout+p+pw])
				}
			}
		}
	})
	return up, pw
}

// winoKernels returns the transformed kernels U of the HWIO weights w for
// tile size m, laid out for the products (winoPanels: panels of pw
// columns), and a function to call when they are no longer used: from
// pass's cache when it has one and w is a parameter's data, freshly
// computed otherwise. The cache holds the final layout, so that a pass
// evaluating many chunks (or a detector serving many calls) keeps one
// copy of each kernel's transform and makes no panels per call.
func winoKernels(pass *Pass, w []float32, cin, cout, m int, param bool) ([]float32, int, func()) {
	np := (m + 2) * (m + 2)
	par := pass.par()
	compute := func() ([]float32, int) {
		u := alloc(np * cin * cout)
		if m == 4 {
			wino4Weights(u, w, cin, cout)
		} else {
			winoWeights(u, w, cin, cout)
		}
		ub, pw := winoPanels(par, u, np, cin, cout)
		if pw != cout {
			release(u)
		}
		return ub, pw
	}
	if !param || len(w) == 0 || pass == nil || pass.cache == nil {
		ub, pw := compute()
		return ub, pw, func() { release(ub) }
	}
	key := winoKey{&w[0], len(w), m}
	cache := &pass.cache.m
	if v, ok := cache.Load(key); ok {
		e := v.(winoEntry)
		return e.u, e.pw, func() {}
	}
	ub, pw := compute()
	if old, loaded := cache.LoadOrStore(key, winoEntry{ub, pw}); loaded {
		// Another goroutine transformed it meanwhile: keep one.
		release(ub)
		e := old.(winoEntry)
		return e.u, e.pw, func() {}
	}
	return ub, pw, func() {}
}

// winoEntry is a cached kernel transform in the products' layout.
type winoEntry struct {
	u  []float32
	pw int
}

// winoKey identifies a kernel transform: the weights' memory and the tile
// size.
type winoKey struct {
	p    *float32
	n, m int
}

// isParam reports whether t is a parameter, a leaf that requires
// gradients (its data changes only between passes, by an optimiser), or
// a tensor derived from parameters that a pass keeps (Pass.Derived).
func isParam(t *Tensor) bool { return t != nil && ((t.requiresGrad && t.node == nil) || t.constant) }

// winogradWeightGrad adds the gradient of the 3x3 same convolution of x
// [N, H, W, cin] with respect to its HWIO weights, given the output
// gradient gy [N, H, W, cout], into gw [3, 3, cin, cout].
func winogradWeightGrad(par kernels.Par, gw, x, gy []float32, n, h, wd, cin, cout, m int) {
	g := kernels.WinogradTiles{N: n, H: h, W: wd, M: m}
	np := g.Positions()
	bt := winoBlockTiles(cin, cout, np)
	tiles := g.Count()
	blocks := (tiles + bt - 1) / bt
	du := allocZero(np * cin * cout)
	defer release(du)
	// Each worker sums its run of blocks into its own partial, indexed by
	// the run's first block; the partials are then added in block order,
	// so the result does not depend on which worker finishes first.
	parts := make([][]float32, blocks)
	par.ParallelFor(blocks, 1, func(lo, hi int) {
		vs, ms := winoStride(bt*cin), winoStride(bt*cout)
		// The slack lets the products read the last position's bottom-edge
		// sliver in place (kernels.Sgemm reads up to a micro-kernel's rows).
		v := alloc(np*vs + 32)
		dm := alloc(np * ms)
		part := allocZero(np * cin * cout)
		for blk := lo; blk < hi; blk++ {
			t0 := blk * bt
			t1 := min(tiles, t0+bt)
			g.Input(v, vs, x, cin, t0, t1)
			g.Grad(dm, ms, gy, cout, t0, t1)
			kernels.SgemmStridedSerial(np, true, false, cin, cout, t1-t0, 1, v, cin, vs,
				dm, cout, ms, 1, part, cout, cin*cout)
		}
		parts[lo] = part
		release(dm)
		release(v)
	})
	for _, part := range parts {
		if part != nil {
			kernels.AddTo(du, part)
			release(part)
		}
	}
	if m == 4 {
		wino4WeightGrad(gw, du, cin, cout)
	} else {
		winoWeightGrad(gw, du, cin, cout)
	}
}

// flipTranspose returns the kernel of the input gradient of a same
// convolution with HWIO weights w [k, k, cin, cout]: w flipped in both
// spatial directions with its channels transposed, [k, k, cout, cin].
func flipTranspose(w []float32, k, cin, cout int) []float32 {
	wf := alloc(k * k * cout * cin)
	for a := 0; a < k; a++ {
		for b := 0; b < k; b++ {
			src := w[((k-1-a)*k+(k-1-b))*cin*cout:][:cin*cout]
			dst := wf[(a*k+b)*cout*cin:][:cout*cin]
			for ci := 0; ci < cin; ci++ {
				for co := 0; co < cout; co++ {
					dst[co*cin+ci] = src[ci*cout+co]
				}
			}
		}
	}
	return wf
}
