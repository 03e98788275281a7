package tensor

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/flowood/flowood/kernels"
)

// MatMul returns x·w for x of shape [..., In] and w of shape [In, Out]: a
// linear layer, or a 1x1 convolution of an NHWC image.
func MatMul(x, w *Tensor) *Tensor { return matMulBias(x, w, nil) }

// matMulBias returns x·w plus the bias b of shape [Out] on every row (b
// may be nil). The output starts as the bias and the product is added to
// it, which costs a pass that only writes instead of one that reads and
// writes the product again.
func matMulBias(x, w, b *Tensor) *Tensor {
	in := x.Dim(-1)
	if len(w.Shape) != 2 || w.Shape[0] != in {
		panic(fmt.Sprintf("tensor: MatMul of %v by %v", x.Shape, w.Shape))
	}
	outC := w.Shape[1]
	if b != nil && (len(b.Shape) != 1 || b.Shape[0] != outC) {
		panic(fmt.Sprintf("tensor: MatMul by %v with bias %v", w.Shape, b.Shape))
	}
	m := len(x.Data) / in
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), outC)
	p := passOf(x, w, b)
	par := p.par()
	out := newOut(p, shape)
	switch {
	case outC < narrowOut && m >= 64:
		narrowMatMul(par, out.Data, x.Data, w.Data, dataOf(b), m, in, outC)
	case b != nil:
		fillRows(par, out.Data, b.Data)
		par.Sgemm(false, false, m, outC, in, 1, x.Data, in, w.Data, outC, 1, out.Data, outC)
	default:
		par.Sgemm(false, false, m, outC, in, 1, x.Data, in, w.Data, outC, 0, out.Data, outC)
	}
	record(out, func() { matMulBackward(par, x, w, b, out.Grad, in, outC) }, x, w, b)
	return out
}

// narrowOut is the number of columns of the narrowest micro-kernel tile.
const narrowOut = 8

// narrowMatMul sets y [m, outC] = x [m, in] · w [in, outC] (+ b per row
// when b is not nil) for outC < narrowOut: the product is computed
// against w padded with zero columns to narrowOut, whole micro-kernel
// tiles instead of partial ones, each of which went through a scratch
// tile merged into y value by value (as costly as the multiplications
// for the st-networks' 2- and 4-channel output convolutions); then the
// outC columns plus the bias are copied out. The bias is added to the
// finished sum, rounding once, as the fillRows path does.
func narrowMatMul(par kernels.Par, y, x, w, b []float32, m, in, outC int) {
	wp := allocZero(in * narrowOut)
	for k := 0; k < in; k++ {
		copy(wp[k*narrowOut:k*narrowOut+outC], w[k*outC:(k+1)*outC])
	}
	p := alloc(m * narrowOut)
	par.Sgemm(false, false, m, narrowOut, in, 1, x, in, wp, narrowOut, 0, p, narrowOut)
	var bias [narrowOut]float32
	copy(bias[:], b)
	par.ParallelFor(m, grain/narrowOut+1, func(lo, hi int) {
		rows := unsafe.Slice((*[narrowOut]float32)(unsafe.Pointer(&p[lo*narrowOut])), hi-lo)
		dst := y[lo*outC : hi*outC]
		for r := range rows {
			// With b nil the bias is +0 (a sum of -0 becomes +0).
			d := dst[r*outC : r*outC+outC]
			for j := range d {
				d[j] = rows[r][j] + bias[j]
			}
		}
	})
	release(p)
	release(wp)
}

// dataOf returns t's data, or nil for a nil tensor (an absent bias).
func dataOf(t *Tensor) []float32 {
	if t == nil {
		return nil
	}
	return t.Data
}

// fillRows sets every row of dst, as long as v, to v: the first row of
// each worker's range, then copies of what is already filled, doubling
// (a few long copies instead of one short copy per row).
func fillRows(par kernels.Par, dst, v []float32) {
	c := len(v)
	if c == 0 {
		return
	}
	par.ParallelFor(len(dst)/c, grain/c+1, func(lo, hi int) {
		d := dst[lo*c : hi*c]
		copy(d, v)
		for n := c; n < len(d); n *= 2 {
			copy(d[n:], d[:n])
		}
	})
}

// matMulBackward adds the gradients of x·w + b (b may be nil), w holding
// an in x outC matrix (whatever its shape), given the output gradient gy,
// into those of x, w and b.
func matMulBackward(par kernels.Par, x, w, b *Tensor, gy []float32, in, outC int) {
	m := len(x.Data) / in
	if needs(b) {
		addColumnSums(par, b.grad(), gy, nil, outC)
	}
	if needs(w) {
		par.Sgemm(true, false, in, outC, m, 1, x.Data, in, gy, outC, 1, w.grad(), outC)
	}
	if needs(x) {
		// a new gradient is overwritten (beta 0), not cleared and added to
		gx, fresh := x.gradOut()
		beta := float32(1)
		if fresh {
			beta = 0
		}
		par.Sgemm(false, true, m, in, outC, 1, gy, outC, w.Data, outC, beta, gx, in)
	}
}

// convGeom is the geometry of a stride-1 2-D convolution of NHWC images.
type convGeom struct {
	N, H, W, Cin   int
	KH, KW, Cout   int
	Pad            int
	OH, OW         int
	K              int // KH*KW*Cin, the GEMM inner dimension
	imagesPerChunk int
	pass           *Pass // the pass of the convolution's operands
	par            kernels.Par
}

// colChunkFloats bounds the im2col buffer of one chunk of images.
const colChunkFloats = 1 << 22

var colPool sync.Pool

func getCol(n int) []float32 {
	if p, ok := colPool.Get().(*[]float32); ok && cap(*p) >= n {
		return (*p)[:n]
	}
	return make([]float32, n)
}

func putCol(b []float32) { colPool.Put(&b) }

// span returns, for output column ow, the range [k0, k1) of kernel columns
// that fall inside the image, and the first input column iw0 = ow+k0-Pad.
func (g *convGeom) span(ow int) (k0, k1, iw0 int) {
	k0 = max(0, g.Pad-ow)
	k1 = min(g.KW, g.W+g.Pad-ow)
	return k0, k1, ow + k0 - g.Pad
}

// im2col writes the patches of images [n0, n1) as rows of col
// ([rows, K]), zero outside the image. In NHWC the kernel columns of one
// kernel row are adjacent pixels, so each kernel row is one contiguous copy.
func (g *convGeom) im2col(col, x []float32, n0, n1 int) {
	rows := (n1 - n0) * g.OH * g.OW
	rowLen := g.KW * g.Cin
	g.par.ParallelFor(rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			n := n0 + r/(g.OH*g.OW)
			oh := r / g.OW % g.OH
			ow := r % g.OW
			k0, k1, iw0 := g.span(ow)
			dst := col[r*g.K : (r+1)*g.K]
			for kh := 0; kh < g.KH; kh++ {
				ih := oh + kh - g.Pad
				seg := dst[kh*rowLen : (kh+1)*rowLen]
				if ih < 0 || ih >= g.H || k0 >= k1 {
					clear(seg)
					continue
				}
				clear(seg[:k0*g.Cin])
				off := ((n*g.H+ih)*g.W + iw0) * g.Cin
				copy(seg[k0*g.Cin:k1*g.Cin], x[off:off+(k1-k0)*g.Cin])
				clear(seg[k1*g.Cin:])
			}
		}
	})
}

// col2im adds the patch gradients dcol of images [n0, n1) back into gx.
// Work is split by image so no two goroutines write the same pixel.
func (g *convGeom) col2im(gx, dcol []float32, n0, n1 int) {
	rowLen := g.KW * g.Cin
	g.par.ParallelFor(n1-n0, 1, func(lo, hi int) {
		for n := n0 + lo; n < n0+hi; n++ {
			for oh := 0; oh < g.OH; oh++ {
				for ow := 0; ow < g.OW; ow++ {
					r := ((n-n0)*g.OH+oh)*g.OW + ow
					k0, k1, iw0 := g.span(ow)
					if k0 >= k1 {
						continue
					}
					src := dcol[r*g.K : (r+1)*g.K]
					for kh := 0; kh < g.KH; kh++ {
						ih := oh + kh - g.Pad
						if ih < 0 || ih >= g.H {
							continue
						}
						s := src[kh*rowLen+k0*g.Cin : kh*rowLen+k1*g.Cin]
						off := ((n*g.H+ih)*g.W + iw0) * g.Cin
						kernels.AddTo(gx[off:off+len(s)], s)
					}
				}
			}
		}
	})
}

// Conv2D returns the stride-1 convolution (cross-correlation, as in PyTorch)
// of NHWC images x [N, H, W, Cin] with HWIO weights w [KH, KW, Cin, Cout],
// zero padding pad on every side. The output is
// [N, H+2pad-KH+1, W+2pad-KW+1, Cout].
//
// A 1x1 convolution without padding is MatMul. A 3x3 convolution with
// padding 1 and at least 16 channels in and out is computed, both
// passes, by Winograd's F(4x4, 3x3) algorithm on images whose sides are
// multiples of 4 (from 16), F(2x2, 3x3) otherwise (conv_winograd.go gives
// the algorithms, the rule and the measurements behind it). Otherwise the
// forward pass and the backward pass each use one of two algorithms,
// chosen by shape (implicitConv in conv_implicit.go gives the rule and
// the measurements behind it):
//   - im2col: the patches of a chunk of images are copied into a
//     [rows, KH*KW*Cin] matrix and multiplied by the weights in one GEMM;
//     the backward pass recomputes the patches instead of storing them and
//     adds the patch gradients back (col2im).
//   - implicit GEMM, for "same" convolutions (odd square kernel, pad
//     (K-1)/2): x is padded once and the output computed over the padded
//     grid by kernels.SgemmImplicit reading the overlapping patch rows in
//     place; the input gradient is the same convolution of the padded
//     output gradient with the flipped kernel, and the weight gradient K
//     kernels.SgemmOverlap products. It computes the border outputs and
//     drops them (+15% work at 28x28, +31% at 14x14), so it wins where
//     the patch copy costs more: few channels, large images. For 3x3 it
//     is taken with up to 81 channels at 28x28 and 39 at 14x14
//     (crossover measured at 14x14 32->32, a tie); at batch 64 on 2
//     cores, 16->16 channels at 28x28 went from 3.4 to 2.3 ms forward and
//     from 15 to 8.5 ms forward+backward, 64->64 from 95 to 80 ms.
func Conv2D(x, w *Tensor, pad int) *Tensor { return conv2D(x, w, nil, pad) }

// Conv2DBias returns Conv2D(x, w, pad) plus the bias b of shape [Cout]
// added to every output pixel: AddChannel(Conv2D(x, w, pad), b), except
// that where the convolution is computed by Winograd's algorithm the bias
// is folded into it, saving a pass over the output. b may be nil.
func Conv2DBias(x, w, b *Tensor, pad int) *Tensor {
	if b != nil && (len(b.Shape) != 1 || len(w.Shape) != 4 || b.Shape[0] != w.Shape[3]) {
		panic(fmt.Sprintf("tensor: Conv2DBias with weights %v and bias %v", w.Shape, b.Shape))
	}
	return conv2D(x, w, b, pad)
}

// newConvGeom returns the geometry of op's convolution of the NHWC images
// x by the HWIO weights w with padding pad, panicking on shapes that do
// not fit or give an empty output.
func newConvGeom(op string, x, w *Tensor, pad int) *convGeom {
	if len(x.Shape) != 4 || len(w.Shape) != 4 || w.Shape[2] != x.Shape[3] {
		panic(fmt.Sprintf("tensor: %s of %v by weights %v", op, x.Shape, w.Shape))
	}
	g := &convGeom{N: x.Shape[0], H: x.Shape[1], W: x.Shape[2], Cin: x.Shape[3],
		KH: w.Shape[0], KW: w.Shape[1], Cout: w.Shape[3], Pad: pad}
	g.OH, g.OW = g.H+2*pad-g.KH+1, g.W+2*pad-g.KW+1
	if g.OH <= 0 || g.OW <= 0 {
		panic(fmt.Sprintf("tensor: %s of %v by %v with padding %d is empty", op, x.Shape, w.Shape, pad))
	}
	g.K = g.KH * g.KW * g.Cin
	g.pass = passOf(x, w)
	g.par = g.pass.par()
	g.imagesPerChunk = min(g.N, max(1, colChunkFloats/(g.OH*g.OW*g.K)))
	return g
}

// conv2D is Conv2DBias.
func conv2D(x, w, b *Tensor, pad int) *Tensor {
	g := newConvGeom("Conv2D", x, w, pad)
	wino := winogradTile(g)
	if g.KH == 1 && g.KW == 1 && pad == 0 {
		return matMulBias(x, Reshape(w, g.Cin, g.Cout), b)
	}
	implicit := wino == 0 && (implicitConv(g, false) || (!AnyRequiresGrad(x, w, b) && implicitForward(g)))
	if b != nil && wino == 0 && !implicit {
		y := conv2D(x, w, nil, pad)
		yb := AddChannel(y, b)
		Done(y)
		return yb
	}
	bias := dataOf(b)
	out := newOut(g.pass, []int{g.N, g.OH, g.OW, g.Cout})
	if wino != 0 {
		winogradConv(g.pass, out.Data, x.Data, w.Data, bias, g.N, g.H, g.W, g.Cin, g.Cout, wino, false, isParam(w))
	} else if implicit {
		newSameGeom(g).forward(out.Data, x.Data, w.Data, bias)
	} else {
		g.chunks(func(n0, n1 int, col []float32) {
			g.im2col(col, x.Data, n0, n1)
			rows := (n1 - n0) * g.OH * g.OW
			y := out.Data[n0*g.OH*g.OW*g.Cout:]
			g.par.Sgemm(false, false, rows, g.Cout, g.K, 1, col, g.K, w.Data, g.Cout, 0, y, g.Cout)
		})
	}
	backward := func() { g.backward(x, w, b, out.Grad, wino) }
	if b != nil {
		record(out, backward, x, w, b)
	} else {
		record(out, backward, x, w)
	}
	return out
}

// chunks calls fn for consecutive image ranges with a pooled patch buffer.
func (g *convGeom) chunks(fn func(n0, n1 int, col []float32)) {
	col := getCol(g.imagesPerChunk * g.OH * g.OW * g.K)
	defer putCol(col)
	for n0 := 0; n0 < g.N; n0 += g.imagesPerChunk {
		n1 := min(n0+g.imagesPerChunk, g.N)
		fn(n0, n1, col)
	}
}

// backward adds the gradients of Conv2DBias(x, w, b, pad) of geometry g,
// computed by the algorithm conv2D chose (wino the Winograd tile size or
// 0), given the output gradient gy, into those of x, w and b.
func (g *convGeom) backward(x, w, b *Tensor, gy []float32, wino int) {
	if needs(b) {
		addColumnSums(g.par, b.grad(), gy, nil, g.Cout)
	}
	if wino != 0 {
		if needs(w) {
			winogradWeightGrad(g.par, w.grad(), x.Data, gy, g.N, g.H, g.W, g.Cin, g.Cout, wino)
		}
		if needs(x) {
			wf := flipTranspose(w.Data, 3, g.Cin, g.Cout)
			gx, fresh := x.gradOut()
			winogradConv(g.pass, gx, gy, wf, nil, g.N, g.H, g.W, g.Cout, g.Cin, wino, !fresh, false)
			release(wf)
		}
		return
	}
	if implicitConv(g, true) {
		newSameGeom(g).backward(x, w, gy)
		return
	}
	var gw []float32
	if needs(w) {
		gw = w.grad()
	}
	var dcol []float32
	if needs(x) {
		dcol = getCol(g.imagesPerChunk * g.OH * g.OW * g.K)
		defer putCol(dcol)
	}
	g.chunks(func(n0, n1 int, col []float32) {
		rows := (n1 - n0) * g.OH * g.OW
		gyc := gy[n0*g.OH*g.OW*g.Cout:]
		if gw != nil {
			g.im2col(col, x.Data, n0, n1)
			g.par.Sgemm(true, false, g.K, g.Cout, rows, 1, col, g.K, gyc, g.Cout, 1, gw, g.Cout)
		}
		if dcol != nil {
			g.par.Sgemm(false, true, rows, g.K, g.Cout, 1, gyc, g.Cout, w.Data, g.Cout, 0, dcol, g.K)
			g.col2im(x.grad(), dcol, n0, n1)
		}
	})
}
