package kernels

import (
	"unsafe"

	"github.com/flowood/flowood/kernels/internal/winomat"
)

// Tile transforms of Winograd's F(2x2, 3x3) and F(4x4, 3x3) convolutions
// (Lavin and Gray 2016), applied to every channel of a tile alike. A tile
// is a table of pointers, one per position in row-major order, each to the
// c channel values of that position; the F(2x2, 3x3) matrices are
//
//	     ⎡1  0 -1  0⎤        ⎡1  1  1  0⎤
//	Bᵀ = ⎢0  1  1  0⎥   Aᵀ = ⎣0  1 -1 -1⎦
//	     ⎢0 -1  1  0⎥
//	     ⎣0  1  0 -1⎦
//
// and F(4x4, 3x3)'s are shown with WinogradTiles (the package tensor's
// conv_winograd.go puts them together). On amd64 the
// channels are processed 16 at a time by AVX-512 or AVX2 assembly
// (internal/elemgen) and the rest in Go; every path rounds each operation
// alike, in the same order, so results do not depend on the path.

// WinogradTiles is the tiling of a batch of NHWC images [N, H, W, c] into
// the MxM output tiles of F(MxM, 3x3) for a 3x3 convolution with padding
// 1, numbered in (image, tile row, tile column) order; M is 2 (also when
// zero) or 4. Tile (th, tw) covers output pixels rows M·th..M·th+M-1 and
// columns M·tw..M·tw+M-1 and reads the (M+2)x(M+2) input patch starting at
// row M·th-1, column M·tw-1, zero outside the image. Transformed tiles are
// stored by position: value ξ (0..(M+2)²-1, row-major in the tile) of the
// j-th tile of a range starting at t0 is the c-vector at
// buf[ξ*stride+j*c:], so that the values of one position for consecutive
// tiles form a [tiles, c] matrix.
//
// F(4x4, 3x3) uses the matrices of Lavin and Gray (points 0, ±1, ±2):
//
//	     ⎡4  0 -5  0  1  0⎤
//	     ⎢0 -4 -4  1  1  0⎥        ⎡1  1  1  1  1  0⎤
//	Bᵀ = ⎢0  4 -4 -1  1  0⎥   Aᵀ = ⎢0  1 -1  2 -2  0⎥
//	     ⎢0 -2 -1  2  1  0⎥        ⎢0  1  1  4  4  0⎥
//	     ⎢0  2 -1 -2  1  0⎥        ⎣0  1 -1  8 -8  1⎦
//	     ⎣0  4  0 -5  0  1⎦
type WinogradTiles struct{ N, H, W, M int }

// wino4A is A of F(4x4, 3x3), the gradient transform's matrix.
var wino4A = winomat.Transpose(winomat.AT)

// tile returns the output tile side M and the input tile side M+2.
func (g WinogradTiles) tile() (m, a int) {
	if g.M == 4 {
		return 4, 6
	}
	return 2, 4
}

// Positions returns the number of positions of a transformed tile, 16 for
// F(2x2, 3x3) and 36 for F(4x4, 3x3).
func (g WinogradTiles) Positions() int {
	_, a := g.tile()
	return a * a
}

// Count returns the number of tiles, N·⌈H/M⌉·⌈W/M⌉.
func (g WinogradTiles) Count() int {
	m, _ := g.tile()
	return g.N * ((g.H + m - 1) / m) * ((g.W + m - 1) / m)
}

// check panics unless the tile size is 2 or 4, img holds the images with
// c channels, [t0, t1) is a range of tiles, and buf holds the positions
// stride apart for them.
func (g WinogradTiles) check(op string, img []float32, c, t0, t1 int, buf []float32, stride int) {
	switch {
	case g.M != 0 && g.M != 2 && g.M != 4:
		panic("kernels: WinogradTiles." + op + ": tile size not 2 or 4")
	case g.N < 0 || g.H < 0 || g.W < 0 || c < 1:
		panic("kernels: WinogradTiles." + op + ": negative size or no channels")
	case len(img) < g.N*g.H*g.W*c:
		panic("kernels: WinogradTiles." + op + ": image slice too short")
	case t0 < 0 || t0 > t1 || t1 > g.Count():
		panic("kernels: WinogradTiles." + op + ": tile range out of bounds")
	case t1 > t0 && (stride < (t1-t0)*c || len(buf) < (g.Positions()-1)*stride+(t1-t0)*c):
		panic("kernels: WinogradTiles." + op + ": transformed-tile buffer too short")
	}
}

// origin returns the image and the top-left output pixel of tile t.
func (g WinogradTiles) origin(t int) (n, oh, ow int) {
	m, _ := g.tile()
	tw := (g.W + m - 1) / m
	per := (g.H + m - 1) / m * tw
	n, r := t/per, t%per
	return n, m * (r / tw), m * (r % tw)
}

// maxPositions is the number of positions of the largest tile.
const maxPositions = 36

// tileRun is a run of tiles transformed by one kernel call: tile k's
// vectors lie k·sstep bytes (source) and k·dstep bytes (destination)
// beyond the first tile's.
type tileRun struct{ tiles, sstep, dstep int }

// perRow returns the number of tiles in a row of tiles.
func (g WinogradTiles) perRow() int {
	m, _ := g.tile()
	return (g.W + m - 1) / m
}

// Input writes the input transform Bᵀ d B of tiles [t0, t1) of the images
// x [N, H, W, c] into v, positions vs apart. Runs of tiles of a tile row
// whose patches lie within the image's columns are transformed by one
// call each: at 28x28 and 14x14, 3 calls per tile row instead of 7.
func (g WinogradTiles) Input(v []float32, vs int, x []float32, c, t0, t1 int) {
	g.check("Input", x, c, t0, t1, v, vs)
	if t0 == t1 {
		return
	}
	m, a := g.tile()
	e := elem()
	tw := g.perRow()
	// Zeros for the positions outside the image, enough for a run of a
	// whole tile row stepping through them.
	zp := getBuf(c * (m*tw + 1))
	defer putBuf(zp)
	zero := *zp
	clear(zero)
	// Byte offsets of the patch pixels from its top-left one.
	var off [maxPositions]int
	for i := 0; i < a; i++ {
		for j := 0; j < a; j++ {
			off[a*i+j] = 4 * (i*g.W + j) * c
		}
	}
	x0, z0 := unsafe.Pointer(&x[0]), &zero[0]
	var d0Arr, dArr, sArr [maxPositions]*float32
	np := a * a
	d0, d, s := d0Arr[:np], dArr[:np], sArr[:np]
	for xi := range d0 {
		d0[xi] = &v[xi*vs]
	}
	for t := t0; t < t1; {
		n, oh, ow := g.origin(t)
		// A run continues while the next tile's patch lies within the
		// image's columns too; the row is the same for all its tiles.
		run := 1
		if ow >= 1 && ow+m+1 <= g.W {
			for run < t1-t && ow/m+run < tw && ow+run*m+m+1 <= g.W {
				run++
			}
		}
		// The patch's top-left pixel, in bytes from x[0] (outside the
		// image, even before x, for border tiles); check has made sure
		// that the image lies in x.
		base := 4 * ((n*g.H+oh-1)*g.W + ow - 1) * c
		if oh >= 1 && ow >= 1 && oh+m+1 <= g.H && ow+m+1 <= g.W {
			// Interior tiles: the whole patch lies in the image.
			for k := range s {
				s[k] = (*float32)(unsafe.Add(x0, base+off[k]))
			}
		} else {
			// Bit i of rows (cols) is set when patch row (column) i lies
			// in the image.
			var rows, cols uint
			for i := 0; i < a; i++ {
				if ih := oh - 1 + i; ih >= 0 && ih < g.H {
					rows |= 1 << i
				}
				if iw := ow - 1 + i; iw >= 0 && iw < g.W {
					cols |= 1 << i
				}
			}
			for i := 0; i < a; i++ {
				for j := 0; j < a; j++ {
					k := a*i + j
					if rows>>i&(cols>>j)&1 != 0 {
						s[k] = (*float32)(unsafe.Add(x0, base+off[k]))
					} else {
						s[k] = z0
					}
				}
			}
		}
		// Tile t-t0 of every position: within v, as check made sure.
		o := 4 * (t - t0) * c
		for xi := range d {
			d[xi] = (*float32)(unsafe.Add(unsafe.Pointer(d0[xi]), o))
		}
		r := tileRun{run, 4 * m * c, 4 * c}
		lo := 0
		if c >= unit && winoInCall(e, m, d, s, c&^(unit-1), r) {
			lo = c &^ (unit - 1)
		}
		if lo < c {
			r.each(d, s, func(d, s []*float32) {
				if m == 2 {
					var p, q [16][]float32
					for k := range p {
						p[k], q[k] = unsafe.Slice(s[k], c), unsafe.Slice(d[k], c)
					}
					winoInGo(&q, &p, lo, c)
				} else {
					winoLXLtGo(d, s, winomat.BT, lo, c, false)
				}
			})
		}
		t += run
	}
}

// each calls fn with the tables of every tile of the run r whose first
// tile's tables are d and s.
func (r tileRun) each(d, s []*float32, fn func(d, s []*float32)) {
	var dk, sk [maxPositions]*float32
	for k := 0; k < r.tiles; k++ {
		for i := range d {
			dk[i] = (*float32)(unsafe.Add(unsafe.Pointer(d[i]), k*r.dstep))
		}
		for i := range s {
			sk[i] = (*float32)(unsafe.Add(unsafe.Pointer(s[i]), k*r.sstep))
		}
		fn(dk[:len(d)], sk[:len(s)])
	}
}

// Output writes (or adds, when add is set) the output transform Aᵀ M A of
// the products m of tiles [t0, t1), positions ms apart, into the images y
// [N, H, W, c], dropping the outputs beyond the image. Runs of tiles of a
// tile row that lie wholly in the image are transformed by one call each.
func (g WinogradTiles) Output(y, m []float32, ms, c, t0, t1 int, add bool) {
	g.check("Output", y, c, t0, t1, m, ms)
	if t0 == t1 {
		return
	}
	tm, a := g.tile()
	e := elem()
	tw := g.perRow()
	sp := getBuf(tm * tm * c)
	defer putBuf(sp)
	scratch := *sp
	var dArr [16]*float32
	var s0Arr, sArr [maxPositions]*float32
	d, s0, s := dArr[:tm*tm], s0Arr[:a*a], sArr[:a*a]
	for xi := range s0 {
		s0[xi] = &m[xi*ms]
	}
	// Byte offsets of the output pixels of a tile from its top-left one.
	var doff [16]int
	for i := 0; i < tm; i++ {
		for j := 0; j < tm; j++ {
			doff[tm*i+j] = 4 * (i*g.W + j) * c
		}
	}
	for t := t0; t < t1; {
		n, oh, ow := g.origin(t)
		// Tile t-t0 of every position: within m, as check made sure.
		o := 4 * (t - t0) * c
		for xi := range s {
			s[xi] = (*float32)(unsafe.Add(unsafe.Pointer(s0[xi]), o))
		}
		full := oh+tm <= g.H && ow+tm <= g.W
		run := 1
		if full {
			for run < t1-t && ow/tm+run < tw && ow+(run+1)*tm <= g.W {
				run++
			}
			// The whole run lies in the image, which check has made
			// sure lies in y.
			base := unsafe.Pointer(&y[((n*g.H+oh)*g.W+ow)*c])
			for k := range d {
				d[k] = (*float32)(unsafe.Add(base, doff[k]))
			}
		} else {
			for k := range d {
				d[k] = &scratch[k*c]
			}
		}
		addHere := add && full
		r := tileRun{run, 4 * c, 4 * tm * c}
		lo := 0
		if c >= unit && winoOutCall(e, tm, d, s, c&^(unit-1), r, addHere) {
			lo = c &^ (unit - 1)
		}
		if lo < c {
			r.each(d, s, func(d, s []*float32) {
				if tm == 2 {
					var p [16][]float32
					var q [4][]float32
					for k := range p {
						p[k] = unsafe.Slice(s[k], c)
					}
					for k := range q {
						q[k] = unsafe.Slice(d[k], c)
					}
					winoOutGo(&q, &p, lo, c, addHere)
				} else {
					winoLXLtGo(d, s, winomat.AT, lo, c, addHere)
				}
			})
		}
		t += run
		if full {
			continue
		}
		for i := 0; i < tm && oh+i < g.H; i++ {
			for j := 0; j < tm && ow+j < g.W; j++ {
				off := ((n*g.H+oh+i)*g.W + ow + j) * c
				dst, src := y[off:off+c], scratch[(tm*i+j)*c:(tm*i+j+1)*c]
				if add {
					AddTo(dst, src)
				} else {
					copy(dst, src)
				}
			}
		}
	}
}

// Grad writes the output-gradient transform A dY Aᵀ of tiles [t0, t1) of
// the output gradient gy [N, H, W, c] (zero beyond the image) into dm,
// positions ms apart: the adjoint of Output. Runs of tiles of a tile row
// that lie wholly in the image are transformed by one call each.
func (g WinogradTiles) Grad(dm []float32, ms int, gy []float32, c, t0, t1 int) {
	g.check("Grad", gy, c, t0, t1, dm, ms)
	if t0 == t1 {
		return
	}
	tm, a := g.tile()
	e := elem()
	tw := g.perRow()
	zp := getBuf(c)
	defer putBuf(zp)
	zero := *zp
	clear(zero)
	var d0Arr, dArr [maxPositions]*float32
	var sArr [16]*float32
	d0, d, s := d0Arr[:a*a], dArr[:a*a], sArr[:tm*tm]
	for xi := range d0 {
		d0[xi] = &dm[xi*ms]
	}
	for t := t0; t < t1; {
		n, oh, ow := g.origin(t)
		run := 1
		if oh+tm <= g.H && ow+tm <= g.W {
			for run < t1-t && ow/tm+run < tw && ow+(run+1)*tm <= g.W {
				run++
			}
		}
		for i := 0; i < tm; i++ {
			for j := 0; j < tm; j++ {
				if oh+i < g.H && ow+j < g.W {
					s[tm*i+j] = &gy[((n*g.H+oh+i)*g.W+ow+j)*c]
				} else {
					s[tm*i+j] = &zero[0]
				}
			}
		}
		// Tile t-t0 of every position: within dm, as check made sure.
		o := 4 * (t - t0) * c
		for xi := range d {
			d[xi] = (*float32)(unsafe.Add(unsafe.Pointer(d0[xi]), o))
		}
		r := tileRun{run, 4 * tm * c, 4 * c}
		lo := 0
		if c >= unit && winoGradCall(e, tm, d, s, c&^(unit-1), r) {
			lo = c &^ (unit - 1)
		}
		if lo < c {
			r.each(d, s, func(d, s []*float32) {
				if tm == 2 {
					var p [4][]float32
					var q [16][]float32
					for k := range p {
						p[k] = unsafe.Slice(s[k], c)
					}
					for k := range q {
						q[k] = unsafe.Slice(d[k], c)
					}
					winoGradGo(&q, &p, lo, c)
				} else {
					winoLXLtGo(d, s, wino4A, lo, c, false)
				}
			})
		}
		t += run
	}
}

// winoInCall, winoOutCall and winoGradCall run the assembly transform of
// e's instruction set for tile size m on n channels (a multiple of 16) of
// the run r and report whether there is one.
func winoInCall(e *elemKernels, m int, d, s []*float32, n int, r tileRun) bool {
	if m == 2 {
		return winoInAsm(e, (*[16]*float32)(d), (*[16]*float32)(s), n, r)
	}
	return wino4InAsm(e, (*[36]*float32)(d), (*[36]*float32)(s), n, r)
}

func winoOutCall(e *elemKernels, m int, d, s []*float32, n int, r tileRun, add bool) bool {
	if m == 2 {
		return winoOutAsm(e, (*[4]*float32)(d), (*[16]*float32)(s), n, r, add)
	}
	return wino4OutAsm(e, (*[16]*float32)(d), (*[36]*float32)(s), n, r, add)
}

func winoGradCall(e *elemKernels, m int, d, s []*float32, n int, r tileRun) bool {
	if m == 2 {
		return winoGradAsm(e, (*[16]*float32)(d), (*[4]*float32)(s), n, r)
	}
	return wino4GradAsm(e, (*[36]*float32)(d), (*[16]*float32)(s), n, r)
}

// winoLXLtGo computes dst = L src Lᵀ (or adds it, with add) for channels
// [lo, c) of a tile whose positions src and dst point to, in the order
// of operations of the assembly (internal/elemgen genLXLt): T = L src row
// by row, then each row of the result from T, every sum over the nonzero
// coefficients in index order, the first term v or 0 - v, the others
// added or subtracted, v the value for coefficients ±1 and |c|·value
// (rounded) otherwise.
func winoLXLtGo(dst, src []*float32, L [][]int, lo, c int, add bool) {
	q, r := len(L[0]), len(L)
	in := make([][]float32, len(src))
	for k := range in {
		in[k] = unsafe.Slice(src[k], c)
	}
	out := make([][]float32, len(dst))
	for k := range out {
		out[k] = unsafe.Slice(dst[k], c)
	}
	var t [6]float32
	combine := func(coef []int, get func(k int) float32) float32 {
		var acc float32
		first := true
		for k, cf := range coef {
			if cf == 0 {
				continue
			}
			v := get(k)
			if cf > 1 || cf < -1 {
				v = float32(float32(max(cf, -cf)) * v)
			}
			switch {
			case first && cf > 0:
				acc = v
			case first:
				acc = 0 - v
			case cf > 0:
				acc = acc + v
			default:
				acc = acc - v
			}
			first = false
		}
		return acc
	}
	for ch := lo; ch < c; ch++ {
		for i := 0; i < r; i++ {
			for l := 0; l < q; l++ {
				t[l] = combine(L[i], func(k int) float32 { return in[k*q+l][ch] })
			}
			for j := 0; j < r; j++ {
				y := combine(L[j], func(l int) float32 { return t[l] })
				if add {
					out[i*r+j][ch] += y
				} else {
					out[i*r+j][ch] = y
				}
			}
		}
	}
}

// winoInGo computes q = Bᵀ p B for channels [lo, c) of a 4x4 tile.
func winoInGo(q, p *[16][]float32, lo, c int) {
	p0, p1, p2, p3 := p[0][:c], p[1][:c], p[2][:c], p[3][:c]
	p4, p5, p6, p7 := p[4][:c], p[5][:c], p[6][:c], p[7][:c]
	p8, p9, p10, p11 := p[8][:c], p[9][:c], p[10][:c], p[11][:c]
	p12, p13, p14, p15 := p[12][:c], p[13][:c], p[14][:c], p[15][:c]
	q0, q1, q2, q3 := q[0][:c], q[1][:c], q[2][:c], q[3][:c]
	q4, q5, q6, q7 := q[4][:c], q[5][:c], q[6][:c], q[7][:c]
	q8, q9, q10, q11 := q[8][:c], q[9][:c], q[10][:c], q[11][:c]
	q12, q13, q14, q15 := q[12][:c], q[13][:c], q[14][:c], q[15][:c]
	for i := lo; i < c; i++ {
		// Bᵀ d, column by column.
		r00, r01, r02, r03 := p0[i]-p8[i], p1[i]-p9[i], p2[i]-p10[i], p3[i]-p11[i]
		r10, r11, r12, r13 := p4[i]+p8[i], p5[i]+p9[i], p6[i]+p10[i], p7[i]+p11[i]
		r20, r21, r22, r23 := p8[i]-p4[i], p9[i]-p5[i], p10[i]-p6[i], p11[i]-p7[i]
		r30, r31, r32, r33 := p4[i]-p12[i], p5[i]-p13[i], p6[i]-p14[i], p7[i]-p15[i]
		// (Bᵀ d) B, row by row.
		q0[i], q1[i], q2[i], q3[i] = r00-r02, r01+r02, r02-r01, r01-r03
		q4[i], q5[i], q6[i], q7[i] = r10-r12, r11+r12, r12-r11, r11-r13
		q8[i], q9[i], q10[i], q11[i] = r20-r22, r21+r22, r22-r21, r21-r23
		q12[i], q13[i], q14[i], q15[i] = r30-r32, r31+r32, r32-r31, r31-r33
	}
}

// winoOutGo computes out = Aᵀ p A (or adds it, when add is set) for
// channels [lo, c) of a 4x4 tile.
func winoOutGo(out *[4][]float32, p *[16][]float32, lo, c int, add bool) {
	p0, p1, p2, p3 := p[0][:c], p[1][:c], p[2][:c], p[3][:c]
	p4, p5, p6, p7 := p[4][:c], p[5][:c], p[6][:c], p[7][:c]
	p8, p9, p10, p11 := p[8][:c], p[9][:c], p[10][:c], p[11][:c]
	p12, p13, p14, p15 := p[12][:c], p[13][:c], p[14][:c], p[15][:c]
	y0, y1, y2, y3 := out[0][:c], out[1][:c], out[2][:c], out[3][:c]
	for i := lo; i < c; i++ {
		// Aᵀ M, column by column.
		s00, s01, s02, s03 := p0[i]+p4[i]+p8[i], p1[i]+p5[i]+p9[i], p2[i]+p6[i]+p10[i], p3[i]+p7[i]+p11[i]
		s10, s11, s12, s13 := p4[i]-p8[i]-p12[i], p5[i]-p9[i]-p13[i], p6[i]-p10[i]-p14[i], p7[i]-p11[i]-p15[i]
		// (Aᵀ M) A.
		a, b := s00+s01+s02, s01-s02-s03
		d, e := s10+s11+s12, s11-s12-s13
		if add {
			y0[i] += a
			y1[i] += b
			y2[i] += d
			y3[i] += e
		} else {
			y0[i], y1[i], y2[i], y3[i] = a, b, d, e
		}
	}
}

// winoGradGo computes q = A p Aᵀ for channels [lo, c) of a 2x2 tile. Negations are written
// 0 - x, as the assembly computes them.
func winoGradGo(q *[16][]float32, p *[4][]float32, lo, c int) {
	p0, p1, p2, p3 := p[0][:c], p[1][:c], p[2][:c], p[3][:c]
	q0, q1, q2, q3 := q[0][:c], q[1][:c], q[2][:c], q[3][:c]
	q4, q5, q6, q7 := q[4][:c], q[5][:c], q[6][:c], q[7][:c]
	q8, q9, q10, q11 := q[8][:c], q[9][:c], q[10][:c], q[11][:c]
	q12, q13, q14, q15 := q[12][:c], q[13][:c], q[14][:c], q[15][:c]
	var zero float32
	for i := lo; i < c; i++ {
		// A dY: rows dY0, dY0+dY1, dY0-dY1, 0-dY1 (two columns each).
		r00, r01 := p0[i], p1[i]
		r10, r11 := p0[i]+p2[i], p1[i]+p3[i]
		r20, r21 := p0[i]-p2[i], p1[i]-p3[i]
		r30, r31 := zero-p2[i], zero-p3[i]
		// (A dY) Aᵀ: the same combination of the two columns.
		q0[i], q1[i], q2[i], q3[i] = r00, r00+r01, r00-r01, zero-r01
		q4[i], q5[i], q6[i], q7[i] = r10, r10+r11, r10-r11, zero-r11
		q8[i], q9[i], q10[i], q11[i] = r20, r20+r21, r20-r21, zero-r21
		q12[i], q13[i], q14[i], q15[i] = r30, r30+r31, r30-r31, zero-r31
	}
}
