// Command elemgen generates the amd64 assembly of package kernels'
// elementwise, per-channel and column-reduction kernels with avo, in an
// AVX-512 and an AVX2 variant each. Run it through go generate in the
// kernels directory:
//
//	go run ./internal/elemgen -out elem_amd64.s -stubs elem_stub_amd64.go -pkg kernels
//
// The kernels work in units of 16 float32 values (one zmm or two ymm
// registers); the Go wrappers in elem.go check the slice bounds, pass
// whole units and finish any remainder in Go. Three shapes of kernel:
//
//   - flat kernels, func(ptrs..., n int), over n values (n a multiple of 16);
//   - row kernels, func(ptrs..., rows, p, ld int), over rows of p values
//     (p a positive multiple of 16) that start ld values apart, with
//     per-column vectors of p values indexed by column;
//   - column kernels, the same layout, that add per-column float64 sums to
//     sum (and prod).
//
// Elementwise results never depend on the variant or on a value's position:
// every kernel rounds each operation as the Go fallbacks in elem.go do (no
// fused multiply-add on float32), and ReLU works on the sign bit like
// tensor.Relu. Column sums convert to float64 before accumulating, so the
// products v*w are exact and only the summation order differs from Go.
package main

import (
	"fmt"

	"github.com/flowood/flowood/kernels/internal/winomat"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/buildtags"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// isa is one instruction-set variant.
type isa struct {
	name  string // function-name suffix
	width int    // float32 lanes per vector
}

var isas = []isa{{"AVX512", 16}, {"AVX2", 8}}

// unitBytes is the size of the unit every kernel steps by: 16 float32s.
const unitBytes = 64

// vec returns a new virtual vector register of the variant's width.
func (s isa) vec() reg.VecVirtual {
	if s.width == 16 {
		return ZMM()
	}
	return YMM()
}

// nvec is the number of vectors in a 16-value unit.
func (s isa) nvec() int { return 16 / s.width }

// vbytes is the size of one vector in bytes.
func (s isa) vbytes() int { return 4 * s.width }

// zero clears x.
func (s isa) zero(x reg.VecVirtual) {
	if s.width == 16 {
		VPXORD(x, x, x)
	} else {
		VPXOR(x, x, x)
	}
}

// relu clears x where its sign bit is set: x &^ (x >> 31, arithmetic), as
// tensor.Relu does, so -0 and negative NaNs become +0.
func (s isa) relu(x reg.VecVirtual) {
	m := s.vec()
	VPSRAD(U8(31), x, m)
	if s.width == 16 {
		VPANDND(x, m, x)
	} else {
		VPANDN(x, m, x)
	}
}

// loadPositive loads v at vm where y at ym is positive (y's bits, as an
// int32, greater than zero: y > 0, and positive NaNs) and +0 elsewhere, into
// a new register. zero must hold zeros.
func (s isa) loadPositive(vm, ym Mem, zero reg.VecVirtual) reg.VecVirtual {
	t := s.vec()
	VMOVUPS(ym, t)
	if s.width == 16 {
		k := K()
		VPCMPGTD(zero, t, k)
		g := s.vec()
		VMOVUPS_Z(vm, k, g)
		return g
	}
	VPCMPGTD(zero, t, t)
	VPAND(vm, t, t)
	return t
}

// loadPtrs loads the named pointer arguments.
func loadPtrs(names ...string) []reg.GPVirtual {
	var out []reg.GPVirtual
	for _, n := range names {
		r := GP64()
		Load(Param(n), r)
		out = append(out, r)
	}
	return out
}

// flatSpec describes a flat kernel; body emits the code for the vector at
// byte offset off of every pointer.
type flatSpec struct {
	name, doc string
	ptrs      []string
	body      func(s isa, p []reg.GPVirtual, off int, zero reg.VecVirtual)
}

// genFlat generates a flat kernel over n values, n a multiple of 16: four
// units per iteration, then one at a time.
func genFlat(s isa, f flatSpec) {
	name := f.name + s.name
	sig := "func("
	for i, p := range f.ptrs {
		if i > 0 {
			sig += ", "
		}
		sig += p
	}
	sig += " *float32, n int)"
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s %s, for n a multiple of 16.", name, f.doc))
	p := loadPtrs(f.ptrs...)
	n := Load(Param("n"), GP64())
	zero := s.vec()
	s.zero(zero)
	SHRQ(U8(4), n)
	JZ(LabelRef(name + "_done"))
	blocks := GP64()
	MOVQ(n, blocks)
	SHRQ(U8(2), blocks)
	JZ(LabelRef(name + "_tail"))
	Label(name + "_loop")
	for v := 0; v < 4*s.nvec(); v++ {
		f.body(s, p, v*s.vbytes(), zero)
	}
	for _, r := range p {
		ADDQ(U32(4*unitBytes), r)
	}
	DECQ(blocks)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_tail")
	ANDQ(U8(3), n)
	JZ(LabelRef(name + "_done"))
	Label(name + "_tailloop")
	for v := 0; v < s.nvec(); v++ {
		f.body(s, p, v*s.vbytes(), zero)
	}
	for _, r := range p {
		ADDQ(U32(unitBytes), r)
	}
	DECQ(n)
	JNZ(LabelRef(name + "_tailloop"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// rowSpec describes a row kernel: ptrs advance along the rows, cols are
// the per-column vectors. body emits the code for the vector at byte
// offset off, with col(i) addressing the i-th column vector there.
type rowSpec struct {
	name, doc string
	ptrs      []string
	cols      []string
	body      func(s isa, p []reg.GPVirtual, col func(i int) Mem, off int, zero reg.VecVirtual)
}

// genRows generates a row kernel over rows of p values (a positive
// multiple of 16) starting ld values apart.
func genRows(s isa, f rowSpec) {
	name := f.name + s.name
	sig := "func("
	for i, p := range append(append([]string(nil), f.ptrs...), f.cols...) {
		if i > 0 {
			sig += ", "
		}
		sig += p
	}
	sig += " *float32, rows, p, ld int)"
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s %s, for rows of p values (p a positive multiple of 16) starting ld values apart.", name, f.doc))
	p := loadPtrs(f.ptrs...)
	cols := loadPtrs(f.cols...)
	rows := Load(Param("rows"), GP64())
	pb := Load(Param("p"), GP64())
	skip := Load(Param("ld"), GP64())
	zero := s.vec()
	s.zero(zero)
	TESTQ(rows, rows)
	JZ(LabelRef(name + "_done"))
	TESTQ(pb, pb)
	JZ(LabelRef(name + "_done"))
	SHLQ(U8(2), pb)
	SHLQ(U8(2), skip)
	SUBQ(pb, skip) // bytes from the end of one row to the start of the next
	j := GP64()
	Label(name + "_row")
	XORQ(j, j)
	Label(name + "_col")
	for v := 0; v < s.nvec(); v++ {
		off := v * s.vbytes()
		col := func(i int) Mem { return Mem{Base: cols[i], Index: j, Scale: 1, Disp: off} }
		f.body(s, p, col, off, zero)
	}
	for _, r := range p {
		ADDQ(U32(unitBytes), r)
	}
	ADDQ(U32(unitBytes), j)
	CMPQ(j, pb)
	JNE(LabelRef(name + "_col"))
	for _, r := range p {
		ADDQ(skip, r)
	}
	DECQ(rows)
	JNZ(LabelRef(name + "_row"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// colSpec describes a column kernel: sums of v (masked by m > 0 when
// masked), and with prod also of v*w.
type colSpec struct {
	name, doc string
	masked    bool
	prod      bool
}

// genCols generates a column kernel. It walks the columns in strips of 16,
// and each strip down all the rows with its float64 accumulators in
// registers (two sets, for alternate rows, with AVX-512), then adds them to
// sum and prod.
func genCols(s isa, f colSpec) {
	name := f.name + s.name
	ptrs := []string{"v"}
	if f.masked {
		ptrs = append(ptrs, "m")
	}
	if f.prod {
		ptrs = append(ptrs, "w")
	}
	sig := "func("
	for i, p := range ptrs {
		if i > 0 {
			sig += ", "
		}
		sig += p
	}
	sig += " *float32, rows, p, ld int, sum"
	if f.prod {
		sig += ", prod"
	}
	sig += " *float64)"
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(fmt.Sprintf("%s %s, for rows of p values (p a positive multiple of 16) starting ld values apart, in float64.", name, f.doc))
	base := loadPtrs(ptrs...)
	rows := Load(Param("rows"), GP64())
	pb := Load(Param("p"), GP64())
	stride := Load(Param("ld"), GP64())
	sum := GP64()
	Load(Param("sum"), sum)
	var prod reg.GPVirtual
	if f.prod {
		prod = GP64()
		Load(Param("prod"), prod)
	}
	TESTQ(rows, rows)
	JZ(LabelRef(name + "_done"))
	TESTQ(pb, pb)
	JZ(LabelRef(name + "_done"))
	SHLQ(U8(2), pb)
	SHLQ(U8(2), stride)
	var zero reg.VecVirtual
	if f.masked {
		zero = s.vec()
		s.zero(zero)
	}

	sets := 1
	if s.width == 16 {
		sets = 2
	}
	// float64 vectors per strip of 16 columns
	nd := 16 / (s.width / 2)
	newAcc := func() [][]reg.VecVirtual {
		a := make([][]reg.VecVirtual, sets)
		for k := range a {
			for h := 0; h < nd; h++ {
				a[k] = append(a[k], s.vec())
			}
		}
		return a
	}
	sAcc := newAcc()
	var qAcc [][]reg.VecVirtual
	if f.prod {
		qAcc = newAcc()
	}

	// addRow accumulates the row at byte offset rowOff from the strip
	// pointers into set k.
	addRow := func(ptr []reg.GPVirtual, rowOff reg.Register, k int) {
		at := func(r reg.GPVirtual, disp int) Mem {
			m := Mem{Base: r, Disp: disp}
			if rowOff != nil {
				m.Index, m.Scale = rowOff, 1
			}
			return m
		}
		// dv returns the h-th float64 vector of v in the strip.
		var dv func(h int) reg.VecVirtual
		if f.masked {
			// load and mask v as float32, then widen
			x := make([]reg.VecVirtual, s.nvec())
			for i := range x {
				x[i] = s.loadPositive(at(ptr[0], i*s.vbytes()), at(ptr[1], i*s.vbytes()), zero)
			}
			dv = func(h int) reg.VecVirtual {
				d := s.vec()
				src := x[h/2]
				if h%2 == 0 {
					if s.width == 16 {
						VCVTPS2PD(src.AsY(), d)
					} else {
						VCVTPS2PD(src.AsX(), d)
					}
					return d
				}
				if s.width == 16 {
					t := YMM()
					VEXTRACTF64X4(U8(1), src, t)
					VCVTPS2PD(t, d)
				} else {
					t := XMM()
					VEXTRACTF128(U8(1), src, t)
					VCVTPS2PD(t, d)
				}
				return d
			}
		} else {
			dv = func(h int) reg.VecVirtual {
				d := s.vec()
				VCVTPS2PD(at(ptr[0], h*s.vbytes()/2), d)
				return d
			}
		}
		for h := 0; h < nd; h++ {
			d := dv(h)
			VADDPD(d, sAcc[k][h], sAcc[k][h])
			if f.prod {
				e := s.vec()
				VCVTPS2PD(at(ptr[len(ptr)-1], h*s.vbytes()/2), e)
				VFMADD231PD(e, d, qAcc[k][h])
			}
		}
	}

	js := GP64()
	XORQ(js, js)
	ptr := make([]reg.GPVirtual, len(base))
	for i := range ptr {
		ptr[i] = GP64()
	}
	r := GP64()
	Label(name + "_strip")
	for i := range ptr {
		LEAQ(Mem{Base: base[i], Index: js, Scale: 1}, ptr[i])
	}
	for k := 0; k < sets; k++ {
		for h := 0; h < nd; h++ {
			s.zero(sAcc[k][h])
			if f.prod {
				s.zero(qAcc[k][h])
			}
		}
	}
	MOVQ(rows, r)
	if sets == 2 {
		SHRQ(U8(1), r)
		JZ(LabelRef(name + "_odd"))
		Label(name + "_pairs")
		addRow(ptr, nil, 0)
		addRow(ptr, stride, 1)
		for i := range ptr {
			LEAQ(Mem{Base: ptr[i], Index: stride, Scale: 2}, ptr[i])
		}
		DECQ(r)
		JNZ(LabelRef(name + "_pairs"))
		Label(name + "_odd")
		TESTQ(U32(1), rows)
		JZ(LabelRef(name + "_store"))
		addRow(ptr, nil, 0)
	} else {
		Label(name + "_rows")
		addRow(ptr, nil, 0)
		for i := range ptr {
			ADDQ(stride, ptr[i])
		}
		DECQ(r)
		JNZ(LabelRef(name + "_rows"))
	}
	Label(name + "_store")
	store := func(acc [][]reg.VecVirtual, dst reg.GPVirtual) {
		for h := 0; h < nd; h++ {
			a := acc[0][h]
			if sets == 2 {
				VADDPD(acc[1][h], a, a)
			}
			// float64 columns sit at twice the float32 byte offset
			m := Mem{Base: dst, Index: js, Scale: 2, Disp: h * s.vbytes()}
			VADDPD(m, a, a)
			VMOVUPD(a, m)
		}
	}
	store(sAcc, sum)
	if f.prod {
		store(qAcc, prod)
	}
	ADDQ(U32(unitBytes), js)
	CMPQ(js, pb)
	JNE(LabelRef(name + "_strip"))
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

func main() {
	Constraint(buildtags.Not("purego"))

	flats := []flatSpec{
		{
			name: "addTo", doc: "sets dst[i] += src[i]", ptrs: []string{"dst", "src"},
			body: func(s isa, p []reg.GPVirtual, off int, _ reg.VecVirtual) {
				x := s.vec()
				VMOVUPS(Mem{Base: p[1], Disp: off}, x)
				VADDPS(Mem{Base: p[0], Disp: off}, x, x)
				VMOVUPS(x, Mem{Base: p[0], Disp: off})
			},
		},
		{
			name: "add", doc: "sets dst[i] = a[i] + b[i]", ptrs: []string{"dst", "a", "b"},
			body: func(s isa, p []reg.GPVirtual, off int, _ reg.VecVirtual) {
				x := s.vec()
				VMOVUPS(Mem{Base: p[1], Disp: off}, x)
				VADDPS(Mem{Base: p[2], Disp: off}, x, x)
				VMOVUPS(x, Mem{Base: p[0], Disp: off})
			},
		},
		{
			name: "mul", doc: "sets dst[i] = a[i] * b[i]", ptrs: []string{"dst", "a", "b"},
			body: func(s isa, p []reg.GPVirtual, off int, _ reg.VecVirtual) {
				x := s.vec()
				VMOVUPS(Mem{Base: p[1], Disp: off}, x)
				VMULPS(Mem{Base: p[2], Disp: off}, x, x)
				VMOVUPS(x, Mem{Base: p[0], Disp: off})
			},
		},
		{
			name: "relu", doc: "sets dst[i] = src[i], or +0 where the sign bit of src[i] is set (ReLU)", ptrs: []string{"dst", "src"},
			body: func(s isa, p []reg.GPVirtual, off int, _ reg.VecVirtual) {
				x := s.vec()
				VMOVUPS(Mem{Base: p[1], Disp: off}, x)
				s.relu(x)
				VMOVUPS(x, Mem{Base: p[0], Disp: off})
			},
		},
		{
			name: "reluGrad", doc: "adds gy[i] to gx[i] where y[i] > 0", ptrs: []string{"gx", "gy", "y"},
			body: func(s isa, p []reg.GPVirtual, off int, zero reg.VecVirtual) {
				m := s.loadPositive(Mem{Base: p[1], Disp: off}, Mem{Base: p[2], Disp: off}, zero)
				VADDPS(Mem{Base: p[0], Disp: off}, m, m)
				VMOVUPS(m, Mem{Base: p[0], Disp: off})
			},
		},
	}

	affine := func(relu bool) func(s isa, p []reg.GPVirtual, col func(int) Mem, off int, _ reg.VecVirtual) {
		return func(s isa, p []reg.GPVirtual, col func(int) Mem, off int, _ reg.VecVirtual) {
			x := s.vec()
			VMOVUPS(Mem{Base: p[1], Disp: off}, x)
			VMULPS(col(0), x, x)
			VADDPS(col(1), x, x)
			if relu {
				s.relu(x)
			}
			VMOVUPS(x, Mem{Base: p[0], Disp: off})
		}
	}
	// affineGrad adds k1*g + k2*x + k3 to gx (or with set, stores it in gx
	// without reading gx), rounding each operation, with g = gy, or gy
	// masked by y > 0 when masked.
	affineGrad := func(masked, set bool) func(s isa, p []reg.GPVirtual, col func(int) Mem, off int, zero reg.VecVirtual) {
		return func(s isa, p []reg.GPVirtual, col func(int) Mem, off int, zero reg.VecVirtual) {
			var g reg.VecVirtual
			xp := p[2]
			if masked {
				g = s.loadPositive(Mem{Base: p[1], Disp: off}, Mem{Base: p[2], Disp: off}, zero)
				xp = p[3]
			} else {
				g = s.vec()
				VMOVUPS(Mem{Base: p[1], Disp: off}, g)
			}
			VMULPS(col(0), g, g)
			x := s.vec()
			VMOVUPS(Mem{Base: xp, Disp: off}, x)
			VMULPS(col(1), x, x)
			VADDPS(x, g, g)
			VADDPS(col(2), g, g)
			if !set {
				VADDPS(Mem{Base: p[0], Disp: off}, g, g)
			}
			VMOVUPS(g, Mem{Base: p[0], Disp: off})
		}
	}
	rowSpecs := []rowSpec{
		{name: "affineRows", doc: "sets dst = src*a + b per column", ptrs: []string{"dst", "src"}, cols: []string{"a", "b"}, body: affine(false)},
		{name: "affineReluRows", doc: "sets dst = relu(src*a + b) per column", ptrs: []string{"dst", "src"}, cols: []string{"a", "b"}, body: affine(true)},
		{name: "affineGradRows", doc: "adds k1*gy + k2*x + k3 per column to gx", ptrs: []string{"gx", "gy", "x"}, cols: []string{"k1", "k2", "k3"}, body: affineGrad(false, false)},
		{name: "affineGradRowsSet", doc: "sets gx = k1*gy + k2*x + k3 per column", ptrs: []string{"gx", "gy", "x"}, cols: []string{"k1", "k2", "k3"}, body: affineGrad(false, true)},
		{name: "affineReluGradRows", doc: "adds k1*g + k2*x + k3 per column to gx, with g = gy where y > 0 and +0 elsewhere", ptrs: []string{"gx", "gy", "y", "x"}, cols: []string{"k1", "k2", "k3"}, body: affineGrad(true, false)},
		{name: "affineReluGradRowsSet", doc: "sets gx = k1*g + k2*x + k3 per column, with g = gy where y > 0 and +0 elsewhere", ptrs: []string{"gx", "gy", "y", "x"}, cols: []string{"k1", "k2", "k3"}, body: affineGrad(true, true)},
	}
	colSpecs := []colSpec{
		{name: "colSums", doc: "adds the column sums of v to sum"},
		{name: "colMoments", doc: "adds the column sums of v to sum and of v*w to prod", prod: true},
		{name: "colMomentsMasked", doc: "adds the column sums of g to sum and of g*w to prod, with g = v where m > 0 and 0 elsewhere", masked: true, prod: true},
	}
	for _, s := range isas {
		for _, f := range flats {
			genFlat(s, f)
		}
		for _, f := range mathFlats {
			genFlat(s, f)
		}
		for _, f := range rowSpecs {
			genRows(s, f)
		}
		for _, f := range colSpecs {
			genCols(s, f)
		}
		genWinoIn(s)
		genWinoOut(s, false)
		genWinoOut(s, true)
		genWinoGrad(s)
		// F(4x4, 3x3): input Bᵀ d B (6x6), output Aᵀ m A (6x6 -> 4x4) and
		// its adjoint A g Aᵀ (4x4 -> 6x6).
		genLXLt(s, "wino4In", "sets the 36 vectors dst points to to Bᵀ p B of the 6x6 tile src points to (Winograd F(4x4, 3x3) input transform)",
			"func(dst, src *[36]*float32, n, tiles, sstep, dstep int)", winomat.BT, false)
		genLXLt(s, "wino4Out", "sets the 16 vectors dst points to to Aᵀ p A of the 6x6 tile src points to (Winograd F(4x4, 3x3) output transform)",
			"func(dst *[16]*float32, src *[36]*float32, n, tiles, sstep, dstep int)", winomat.AT, false)
		genLXLt(s, "wino4OutAdd", "adds to the 16 vectors dst points to Aᵀ p A of the 6x6 tile src points to (Winograd F(4x4, 3x3) output transform)",
			"func(dst *[16]*float32, src *[36]*float32, n, tiles, sstep, dstep int)", winomat.AT, true)
		genLXLt(s, "wino4Grad", "sets the 36 vectors dst points to to A p Aᵀ of the 4x4 tile src points to (Winograd F(4x4, 3x3) weight-gradient transform)",
			"func(dst *[36]*float32, src *[16]*float32, n, tiles, sstep, dstep int)", winomat.Transpose(winomat.AT), false)
	}
	Generate()
}
