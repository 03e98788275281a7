package tensor

import "github.com/flowood/flowood/kernels"

// This file computes "same" convolutions (odd square kernels, pad =
// (K-1)/2, stride 1) as implicit GEMMs, without a patch matrix.
//
// The images are padded once to xp [N, Hp, Wp, Cin] (Hp = H+2P, Wp = W+2P)
// and the output is computed at every position q = (n*Hp+i)*Wp+j of the
// padded grid from q = 0 to the last valid output: position q, where it is
// valid (i < H, j < W), is output (n, i, j), and its patch row kh is the
// KW*Cin contiguous values of xp from pixel q+kh*Wp on. The patch matrix
// is therefore K segments of overlapping rows, Cin apart, which
// kernels.SgemmImplicit reads in place; the outputs at the 2P extra
// columns of each row and 2P extra rows of each image are computed and
// dropped. The input gradient is the same convolution of the padded
// output gradient with the kernel flipped and its channels transposed,
// and the weight gradient of kernel row kh is a TN product of the same
// overlapping rows with the output gradient placed on the padded grid.

// sameGeom is the geometry of a same convolution on the padded grid.
type sameGeom struct {
	N, H, W, Cin, Cout int
	K, P               int // kernel size K = 2P+1
	Hp, Wp             int
	M                  int // grid positions computed: up to the last valid output
	par                kernels.Par
}

func newSameGeom(g *convGeom) *sameGeom {
	s := &sameGeom{N: g.N, H: g.H, W: g.W, Cin: g.Cin, Cout: g.Cout, K: g.KH, P: g.Pad, par: g.par}
	s.Hp, s.Wp = s.H+2*s.P, s.W+2*s.P
	s.M = s.N*s.Hp*s.Wp - 2*s.P*s.Wp - 2*s.P
	return s
}

// grid returns the number of positions of the padded grid.
func (s *sameGeom) grid() int { return s.N * s.Hp * s.Wp }

// pad copies the images src [N, H, W, c] into dst [N, Hp, Wp, c] with
// zero borders.
func (s *sameGeom) pad(dst, src []float32, c int) {
	hp, wp, p, h, w := s.Hp, s.Wp, s.P, s.H, s.W
	s.par.ParallelFor(s.N*hp, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := dst[r*wp*c : (r+1)*wp*c]
			i := r%hp - p
			if i < 0 || i >= h {
				clear(row)
				continue
			}
			clear(row[:p*c])
			copy(row[p*c:(p+w)*c], src[((r/hp)*h+i)*w*c:])
			clear(row[(p+w)*c:])
		}
	})
}

// gather stores (or adds, when add is set) the valid outputs of the grid
// result src [M, c] into dst [N, H, W, c].
func (s *sameGeom) gather(dst, src []float32, c int, add bool) {
	h, w := s.H, s.W
	s.par.ParallelFor(s.N*h, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			q := ((r/h)*s.Hp + r%h) * s.Wp
			sr := src[q*c : (q+w)*c]
			dr := dst[r*w*c : (r+1)*w*c]
			if add {
				kernels.AddTo(dr, sr)
			} else {
				copy(dr, sr)
			}
		}
	})
}

// conv computes the grid result dst [M, cout] of the padded images xp
// [N, Hp, Wp, cin] with HWIO weights w [K, K, cin, cout].
func (s *sameGeom) conv(dst, xp []float32, cin int, w []float32, cout int) {
	var offs [maxSameK]int
	for kh := 0; kh < s.K; kh++ {
		offs[kh] = kh * s.Wp * cin
	}
	s.par.SgemmImplicit(false, s.M, cout, s.K*cin, offs[:s.K], 1, xp, cin, w, cout, 0, dst, cout)
}

// maxSameK is the largest kernel the implicit path takes.
const maxSameK = 7

// convAlgo names a convolution algorithm that tests and benchmarks force
// (forceConv); convAuto, the default, chooses by shape.
type convAlgo int

const (
	convAuto             convAlgo = iota
	convImplicit                  // implicit GEMM where it applies, im2col elsewhere
	convIm2col                    // im2col everywhere
	convImplicitForward           // implicit GEMM for the forward pass only, im2col for the gradients
	convImplicitBackward          // implicit GEMM for the gradients only, im2col for the forward pass
	convWinograd2                 // Winograd F(2x2, 3x3) where it applies (3x3, pad 1), im2col elsewhere
	convWinograd4                 // Winograd F(4x4, 3x3) where it applies, im2col elsewhere
)

func (a convAlgo) String() string {
	return [...]string{"auto", "implicit", "im2col", "implicit-forward", "implicit-backward", "winograd", "winograd4"}[a]
}

// forceConv is the algorithm every convolution uses; tests and benchmarks
// set it.
var forceConv = convAuto

// implicitConv reports whether Conv2D computes g's forward pass (or, with
// backward set, its gradients) by implicit GEMM instead of im2col. It
// applies to same convolutions (odd square kernel, pad (K-1)/2 >= 1). The
// implicit path saves the patch copy, whose cost relative to the GEMM
// falls as 1/Cout (1/Cin for the input gradient), but computes the padded
// border, extra work f = Hp*Wp/(H*W) - 1 (0.15 at 28x28, 0.31 at 14x14,
// 0.65 at 7x7 for 3x3). Both passes therefore take it when
// f*max(Cin, Cout) <= 12; choosing the passes separately measured worse,
// as the two algorithms then stop sharing pooled buffers.
//
// Measured with BenchmarkConv2DPaths (batch 64, 2 cores, AVX-512; min of
// 3 runs of 10, forward+backward, implicit vs im2col): 28x28 16->16 8.5-9.7
// vs 15-17 ms, 28x28 32->32 31 vs 51 ms, 28x28 64->64 80 vs 95-125 ms;
// 14x14 32->32 8.6 vs 8.4 ms (f*C = 9.8: a tie; single runs 6.8-7.4 vs
// 7.6-8.9 ms), 14x14 48->48 17.1 vs 14.4 ms and 64->64 22.2 vs 19.9 ms
// (f*C = 15 and 20); 7x7 128->128 26.5 vs 17.1 ms.
//
// Few input channels (the st-networks' input convolutions) were left to
// im2col until the seventh session, when the same benchmark (20-30 runs,
// forward+backward) measured implicit GEMM ahead on every such shape the
// models use: on one core at batch 32 (a data-parallel replica's share),
// 28x28 2->16 3.5 vs 5.6 ms and 14x14 4->32 1.6 vs 2.5 ms; on two cores
// at batch 64, 28x28 2->16 6.3 vs 8.7 ms, 28x28 4->16 5.2 vs 11.0 ms,
// 28x28 8->8 4.3 vs 8.1 ms, 14x14 4->32 3.4 vs 3.5 ms.
func implicitConv(g *convGeom, backward bool) bool {
	if g.KH != g.KW || g.KH != 2*g.Pad+1 || g.Pad < 1 || g.KH > maxSameK {
		return false
	}
	switch forceConv {
	case convImplicit:
		return true
	case convIm2col, convWinograd2, convWinograd4:
		return false
	case convImplicitForward:
		return !backward
	case convImplicitBackward:
		return backward
	}
	hp, wp := g.H+2*g.Pad, g.W+2*g.Pad
	f := float64(hp*wp)/float64(g.H*g.W) - 1
	return f*float64(max(g.Cin, g.Cout)) <= 12
}

// implicitForward reports whether a gradient-free Conv2D, with no
// backward pass to share buffers with, computes g by implicit GEMM where
// implicitConv would not: fewer than 8 input channels on a small image,
// where f*max(Cin, Cout) > 12 (e.g. 7x7 4->32), as the forward pass
// alone of few-channel convolutions measured faster (28x28 2->16 0.55 vs
// 1.4 ms, 14x14 4->32 0.40 vs 0.57 ms, before implicitConv took those).
func implicitForward(g *convGeom) bool {
	return forceConv == convAuto && g.KH == g.KW && g.KH == 2*g.Pad+1 && g.Pad >= 1 && g.KH <= maxSameK && g.Cin < 8
}

// forward computes the convolution y [N, H, W, Cout] of x with w, plus
// the per-channel bias when it is not nil (added as the valid outputs are
// gathered).
func (s *sameGeom) forward(y, x, w, bias []float32) {
	xp := alloc(s.grid() * s.Cin)
	s.pad(xp, x, s.Cin)
	res := alloc(s.M * s.Cout)
	s.conv(res, xp, s.Cin, w, s.Cout)
	if bias != nil {
		s.gatherBias(y, res, bias)
	} else {
		s.gather(y, res, s.Cout, false)
	}
	release(res)
	release(xp)
}

// gatherBias stores the valid outputs of the grid result src [M, c] plus
// bias (c values) into dst [N, H, W, c].
func (s *sameGeom) gatherBias(dst, src, bias []float32) {
	h, w, c := s.H, s.W, len(bias)
	ones := make([]float32, c)
	for i := range ones {
		ones[i] = 1
	}
	s.par.ParallelFor(s.N*h, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			q := ((r/h)*s.Hp + r%h) * s.Wp
			kernels.AffineRows(dst[r*w*c:(r+1)*w*c], src[q*c:(q+w)*c], ones, bias)
		}
	})
}

// backward adds the gradients of Conv2D(x, w) with respect to x and w,
// given the output gradient gy0, into theirs.
func (s *sameGeom) backward(x, w *Tensor, gy0 []float32) {
	gyp := alloc(s.grid() * s.Cout)
	s.pad(gyp, gy0, s.Cout)
	if needs(w) {
		gw := w.grad()
		xp := alloc(s.grid() * s.Cin)
		s.pad(xp, x.Data, s.Cin)
		// dW[kh] [K*Cin, Cout] = A_kh^T · dY on the grid, where row q of
		// dY on the grid is row q+P*Wp+P of the padded gradient (zero at
		// invalid positions).
		rows := s.K * s.Cin
		gy := gyp[(s.P*s.Wp+s.P)*s.Cout:]
		for kh := 0; kh < s.K; kh++ {
			s.par.SgemmOverlap(true, false, rows, s.Cout, s.M, 1, xp[kh*s.Wp*s.Cin:], s.Cin,
				gy, s.Cout, 1, gw[kh*rows*s.Cout:], s.Cout)
		}
		release(xp)
	}
	if needs(x) {
		// The flipped kernel with its channels transposed, [K, K, Cout, Cin].
		k := s.K
		wf := alloc(k * k * s.Cout * s.Cin)
		for a := 0; a < k; a++ {
			for b := 0; b < k; b++ {
				src := w.Data[((k-1-a)*k+(k-1-b))*s.Cin*s.Cout:][:s.Cin*s.Cout]
				dst := wf[(a*k+b)*s.Cout*s.Cin:][:s.Cout*s.Cin]
				for ci := 0; ci < s.Cin; ci++ {
					for co := 0; co < s.Cout; co++ {
						dst[co*s.Cin+ci] = src[ci*s.Cout+co]
					}
				}
			}
		}
		res := alloc(s.M * s.Cin)
		s.conv(res, gyp, s.Cout, wf, s.Cin)
		gx, fresh := x.gradOut()
		s.gather(gx, res, s.Cin, !fresh)
		release(res)
		release(wf)
	}
	release(gyp)
}
