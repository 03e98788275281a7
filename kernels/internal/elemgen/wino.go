package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The Winograd F(2x2, 3x3) tile transforms (see kernels.WinogradInput and
// its siblings) work on tables of pointers to the c-channel vectors of a
// tile's positions, row-major, and compute every channel alike; each
// kernel steps through n channels (n a multiple of 16) one vector at a
// time, reloading the table pointers from memory (L1) as it goes, and
// does so for a run of tiles: tile k's vectors lie k·sstep bytes (source)
// and k·dstep bytes (destination) beyond the first tile's. Each operation
// rounds as the Go fallback's does, in the same order.

// winoLoop is a tile-transform kernel being generated: the tables, the
// source and destination byte offsets of the current vector, and the
// registers of the two loops.
type winoLoop struct {
	name                 string
	dst, src, soff, doff reg.GPVirtual
	ch, end, tiles       reg.GPVirtual
}

// winoKernel starts a tile-transform kernel with the given table
// parameters, emitting both loops' labels.
func winoKernel(s isa, name, doc, sig string) *winoLoop {
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s %s, for n a multiple of 16, for tiles tiles: tile k's vectors lie k·sstep bytes (source) and k·dstep bytes (destination) beyond those the tables point to.", name, doc))
	w := &winoLoop{name: name, dst: GP64(), src: GP64(), soff: GP64(), doff: GP64(), ch: GP64(), end: GP64(), tiles: GP64()}
	Load(Param("dst"), w.dst)
	Load(Param("src"), w.src)
	Load(Param("n"), w.end)
	Load(Param("tiles"), w.tiles)
	SHLQ(U8(2), w.end)
	XORQ(w.soff, w.soff)
	XORQ(w.doff, w.doff)
	TESTQ(w.end, w.end)
	JZ(LabelRef(name + "_done"))
	TESTQ(w.tiles, w.tiles)
	JLE(LabelRef(name + "_done"))
	Label(name + "_tile")
	XORQ(w.ch, w.ch)
	Label(name + "_loop")
	return w
}

// in and out return the vector of source position i and of destination
// position i.
func (w *winoLoop) in(i int) Mem  { return at(w.src, i, w.soff) }
func (w *winoLoop) out(i int) Mem { return at(w.dst, i, w.doff) }

// end closes the loops winoKernel opened.
func (w *winoLoop) close(s isa) {
	vb := U32(s.vbytes())
	ADDQ(vb, w.soff)
	ADDQ(vb, w.doff)
	ADDQ(vb, w.ch)
	CMPQ(w.ch, w.end)
	JB(LabelRef(w.name + "_loop"))
	// The next tile: back to its first channel, one step on.
	step := GP64()
	Load(Param("sstep"), step)
	SUBQ(w.end, step)
	ADDQ(step, w.soff)
	step2 := GP64()
	Load(Param("dstep"), step2)
	SUBQ(w.end, step2)
	ADDQ(step2, w.doff)
	DECQ(w.tiles)
	JNZ(LabelRef(w.name + "_tile"))
	Label(w.name + "_done")
	VZEROUPPER()
	RET()
}

// at returns the vector at byte offset off of the vector that entry i of
// the pointer table tbl points to.
func at(tbl reg.GPVirtual, i int, off reg.GPVirtual) Mem {
	p := GP64()
	MOVQ(Mem{Base: tbl, Disp: 8 * i}, p)
	return Mem{Base: p, Index: off, Scale: 1}
}

// load returns a new register holding the vector at m.
func (s isa) load(m Mem) reg.VecVirtual {
	x := s.vec()
	VMOVUPS(m, x)
	return x
}

// op returns a new register holding a+b (plus) or a-b.
func (s isa) op(a, b reg.VecVirtual, plus bool) reg.VecVirtual {
	x := s.vec()
	if plus {
		VADDPS(b, a, x)
	} else {
		VSUBPS(b, a, x)
	}
	return x
}

// genWinoIn generates the input transform q = Bᵀ p B.
func genWinoIn(s isa) {
	name := "winoIn" + s.name
	w := winoKernel(s, name, "sets the 16 vectors dst points to to Bᵀ p B of the 4x4 tile src points to (Winograd F(2x2, 3x3) input transform)",
		"func(dst, src *[16]*float32, n, tiles, sstep, dstep int)")
	// Row i of Bᵀ p is row a of p plus or minus row b.
	rows := []struct {
		a, b int
		plus bool
	}{{0, 2, false}, {1, 2, true}, {2, 1, false}, {1, 3, false}}
	// With 32 vector registers (AVX-512) the 16 inputs are loaded once;
	// with 16 (AVX2) each row of the result reloads the two rows it needs.
	var in [16]reg.VecVirtual
	if s.width == 16 {
		for k := range in {
			in[k] = s.load(w.in(k))
		}
	}
	get := func(k int) reg.VecVirtual {
		if s.width == 16 {
			return in[k]
		}
		return s.load(w.in(k))
	}
	for i, r := range rows {
		var v [4]reg.VecVirtual
		for j := 0; j < 4; j++ {
			v[j] = s.op(get(4*r.a+j), get(4*r.b+j), r.plus)
		}
		out := []reg.VecVirtual{s.op(v[0], v[2], false), s.op(v[1], v[2], true), s.op(v[2], v[1], false), s.op(v[1], v[3], false)}
		for j, x := range out {
			VMOVUPS(x, w.out(4*i+j))
		}
	}
	w.close(s)
}

// genWinoOut generates the output transform out = Aᵀ p A, or out += Aᵀ p A.
func genWinoOut(s isa, add bool) {
	name, doc := "winoOut"+s.name, "sets the 4 vectors dst points to to"
	if add {
		name, doc = "winoOutAdd"+s.name, "adds to the 4 vectors dst points to"
	}
	w := winoKernel(s, name, doc+" Aᵀ p A of the 4x4 tile src points to (Winograd F(2x2, 3x3) output transform)",
		"func(dst *[4]*float32, src *[16]*float32, n, tiles, sstep, dstep int)")
	for i := 0; i < 2; i++ {
		var v [4]reg.VecVirtual
		for j := 0; j < 4; j++ {
			if i == 0 { // p0 + p4 + p8
				v[j] = s.op(s.op(s.load(w.in(j)), s.load(w.in(4+j)), true), s.load(w.in(8+j)), true)
			} else { // p4 - p8 - p12
				v[j] = s.op(s.op(s.load(w.in(4+j)), s.load(w.in(8+j)), false), s.load(w.in(12+j)), false)
			}
		}
		out := []reg.VecVirtual{s.op(s.op(v[0], v[1], true), v[2], true), s.op(s.op(v[1], v[2], false), v[3], false)}
		for j, x := range out {
			m := w.out(2*i + j)
			if add {
				VADDPS(m, x, x)
			}
			VMOVUPS(x, m)
		}
	}
	w.close(s)
}

// genWinoGrad generates the output-gradient transform q = A p Aᵀ.
func genWinoGrad(s isa) {
	name := "winoGrad" + s.name
	w := winoKernel(s, name, "sets the 16 vectors dst points to to A p Aᵀ of the 2x2 tile src points to (Winograd F(2x2, 3x3) weight-gradient transform)",
		"func(dst *[16]*float32, src *[4]*float32, n, tiles, sstep, dstep int)")
	zero := s.vec()
	s.zero(zero)
	var p [4]reg.VecVirtual
	for k := range p {
		p[k] = s.load(w.in(k))
	}
	// Rows of A p: p0, p0+p2, p0-p2, 0-p2 (two columns each).
	rows := [][2]reg.VecVirtual{
		{p[0], p[1]},
		{s.op(p[0], p[2], true), s.op(p[1], p[3], true)},
		{s.op(p[0], p[2], false), s.op(p[1], p[3], false)},
		{s.op(zero, p[2], false), s.op(zero, p[3], false)},
	}
	for i, r := range rows {
		out := []reg.VecVirtual{r[0], s.op(r[0], r[1], true), s.op(r[0], r[1], false), s.op(zero, r[1], false)}
		for j, x := range out {
			VMOVUPS(x, w.out(4*i+j))
		}
	}
	w.close(s)
}

// genLXLt generates dst = L p Lᵀ (or dst += L p Lᵀ) for tiles given as
// tables of pointers: p is q x q (q = len(L[0])), dst r x r (r = len(L)),
// row-major. Row i of the result is computed from row i of T = L p,
// T[i][l] = Σ_k L[i][k] p[k][l], as Y[i][j] = Σ_l T[i][l] L[j][l]. Every
// sum runs over the nonzero coefficients in index order: the first term
// is v or 0 - v, the others are added or subtracted, where v is the value
// itself for coefficients ±1 and |c|·value (rounded) otherwise. The Go
// code (kernels.winoLXLtGo) evaluates in exactly this order.
func genLXLt(s isa, base, doc, sig string, L [][]int, add bool) {
	name := base + s.name
	w := winoKernel(s, name, doc, sig)
	q := len(L[0])
	// Broadcast the coefficient magnitudes other than 1 once.
	consts := map[int]reg.VecVirtual{}
	for _, row := range L {
		for _, c := range row {
			if a := abs(c); a > 1 && consts[a] == nil {
				// The bits of float32(a): avo prints an F32 of integral
				// value as an integer, which the assembler would store as
				// such.
				m := ConstData(fmt.Sprintf("%s_c%d", name, a), U32(math.Float32bits(float32(a))))
				r := s.vec()
				VBROADCASTSS(m, r)
				consts[a] = r
			}
		}
	}
	zero := s.vec()
	s.zero(zero)
	// combine returns Σ c_k x_k over the nonzero c_k, in order, loading
	// x_k with get(k) as needed.
	combine := func(coef []int, get func(k int) reg.VecVirtual) reg.VecVirtual {
		var acc reg.VecVirtual
		for k, c := range coef {
			if c == 0 {
				continue
			}
			v := get(k)
			if a := abs(c); a > 1 {
				t := s.vec()
				VMULPS(v, consts[a], t)
				v = t
			}
			switch {
			case acc == nil && c > 0:
				acc = v
			case acc == nil:
				acc = s.op(zero, v, false)
			default:
				acc = s.op(acc, v, c > 0)
			}
		}
		return acc
	}
	for i := range L {
		t := make([]reg.VecVirtual, q)
		for l := 0; l < q; l++ {
			t[l] = combine(L[i], func(k int) reg.VecVirtual { return s.load(w.in(k*q + l)) })
		}
		for j := range L {
			y := combine(L[j], func(l int) reg.VecVirtual { return t[l] })
			m := w.out(i*len(L) + j)
			if add {
				VADDPS(m, y, y)
			}
			VMOVUPS(y, m)
		}
	}
	// The loop reloads nothing it keeps: constants and zero stay put.
	w.close(s)
}

func abs(c int) int {
	if c < 0 {
		return -c
	}
	return c
}
