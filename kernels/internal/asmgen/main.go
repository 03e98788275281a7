// Command asmgen generates the amd64 assembly micro-kernels and CPU feature
// probes of package kernels with avo. Run it through go generate in the
// kernels directory:
//
//	go run ./internal/asmgen -out gemm_amd64.s -stubs gemm_stub_amd64.go -pkg kernels
//
// Every micro-kernel has the Go signature
//
//	func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)
//
// and computes the mr×nr tile C = alpha*A*Bp + beta*C, where A is an mr×kc
// block, Bp a packed B sliver of kc groups of nr values, and C a row-major
// tile with leading dimension ldc (in elements). When beta is zero, C is
// written without being read. Each kernel comes in two A layouts: the "P"
// form reads element (i, p) of A at a[i + p*lda], which covers packed
// slivers (lda = mr) and column-major A; the "R" form reads it at
// a[i*lda + p], reading a row-major A in place.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	"github.com/mmcloughlin/avo/buildtags"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// kernelSig is the Go signature shared by all micro-kernels.
const kernelSig = "func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)"

// loopSig is the signature of the looping variants (suffix L), which
// compute tiles tiles of C one under another, mr rows apart, with the
// same Bp, A moving astep values from one tile to the next: the row
// slivers of a product with a one-sliver-wide B in one call instead of
// one call each, whose Go overhead was ~4% of evaluation.
const loopSig = "func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, tiles, astep int)"

// segSig is the signature of the segmented looping variants (suffix LS,
// R form): A is nseg segments of kc columns each, segment s of row i at
// a[s*segstep + i*lda:], and Bp holds nseg*kc groups. It is the implicit
// GEMM of a same convolution (kernels.SgemmImplicit, one segment per
// kernel row) in one call per run of tiles instead of one per segment,
// each of which loaded and stored the C tile.
const segSig = "func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, tiles, astep, nseg, segstep int)"

// main generates the CPU probes and both forms of every micro-kernel.
func main() {
	Constraint(buildtags.Not("purego"))

	genCPUID()
	genXGETBV()

	kernels := []kernelSpec{
		// AVX-512: 14 rows × 2 zmm (32 columns) with 28 accumulators,
		// and 28 rows × 1 zmm (16 columns) for narrow outputs.
		{name: "sgemmAVX512x14x32", mr: 14, nvec: 2, width: 16, bcst: true},
		{name: "sgemmAVX512x28x16", mr: 28, nvec: 1, width: 16, bcst: true},
		// 16 rows × 1 zmm, for products of 16 or 32 rows (the weight
		// gradients of 16- and 32-channel convolutions), which the 14-
		// and 28-row tiles would pad by up to 75%.
		{name: "sgemmAVX512x16x16", mr: 16, nvec: 1, width: 16, bcst: true},
		// 8 rows × 2 zmm, for products of 32 rows and 32 columns (the
		// weight gradients of 32-channel convolutions).
		{name: "sgemmAVX512x8x32", mr: 8, nvec: 2, width: 16, bcst: true},
		// 28 rows × 1 ymm (8 columns), for outputs of at most 8 columns
		// (the st-networks' output convolutions, 2 or 4 channels), which
		// the 16-column tiles pad 2-8 times: on CPUs that split 512-bit
		// operations in two (Zen 4) a ymm FMA costs half a zmm one.
		{name: "sgemmAVX512x28x8", mr: 28, nvec: 1, width: 8, bcst: true, evex: true},
		// AVX2+FMA: 6 rows × 2 ymm (16 columns) with 12 accumulators.
		{name: "sgemmAVX2x6x16", mr: 6, nvec: 2, width: 8},
	}
	for _, k := range kernels {
		for _, rows := range []bool{false, true} {
			k.rows = rows
			for _, loop := range []bool{false, true} {
				k.loop = loop
				genKernel(k)
			}
			if rows {
				k.loop, k.seg = true, true
				genKernel(k)
				k.seg = false
			}
		}
	}

	Generate()
}

// genCPUID generates cpuid, a wrapper for the CPUID instruction.
func genCPUID() {
	TEXT("cpuid", NOSPLIT, "func(eaxArg, ecxArg uint32) (eax, ebx, ecx, edx uint32)")
	Doc("cpuid executes the CPUID instruction for leaf eaxArg and subleaf ecxArg.")
	Load(Param("eaxArg"), reg.EAX)
	Load(Param("ecxArg"), reg.ECX)
	CPUID()
	Store(reg.EAX, Return("eax"))
	Store(reg.EBX, Return("ebx"))
	Store(reg.ECX, Return("ecx"))
	Store(reg.EDX, Return("edx"))
	RET()
}

// genXGETBV generates xgetbv, which reads XCR0.
func genXGETBV() {
	TEXT("xgetbv", NOSPLIT, "func() (eax, edx uint32)")
	Doc("xgetbv reads extended control register 0 (XCR0); only call it when CPUID reports OSXSAVE.")
	XORL(reg.ECX, reg.ECX)
	XGETBV()
	Store(reg.EAX, Return("eax"))
	Store(reg.EDX, Return("edx"))
	RET()
}

// kernelSpec describes one register-blocked micro-kernel.
type kernelSpec struct {
	name  string
	mr    int  // rows of the register tile
	nvec  int  // vectors per row of the tile
	width int  // float32 lanes per vector: 16 (zmm) or 8 (ymm)
	bcst  bool // use embedded-broadcast FMAs instead of VBROADCASTSS
	rows  bool // the R form: A(i, p) at a[i*lda + p] instead of a[i + p*lda]
	loop  bool // the looping variant (loopSig): tiles tiles, one under another
	evex  bool // an AVX-512 kernel of ymm vectors: 32 registers, EVEX encodings
	seg   bool // the segmented looping variant (segSig), R form only
}

// unroll is the number of k steps in one iteration of the main loop.
const unroll = 4

// pfDist is how many k steps ahead the P form prefetches A.
const pfDist = 16

// vec returns the i-th vector register of the kernel's width.
func (s kernelSpec) vec(i int) reg.VecPhysical {
	if s.width == 16 {
		return zmm[i]
	}
	return ymm[i]
}

// zmm lists the AVX-512 vector registers.
var zmm = []reg.VecPhysical{
	reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
	reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
	reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
	reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31,
}

// ymm lists the AVX vector registers.
var ymm = []reg.VecPhysical{
	reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
	reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15,
	reg.Y16, reg.Y17, reg.Y18, reg.Y19, reg.Y20, reg.Y21, reg.Y22, reg.Y23,
	reg.Y24, reg.Y25, reg.Y26, reg.Y27, reg.Y28, reg.Y29, reg.Y30, reg.Y31,
}

// aAddr computes the addresses of A elements for one kernel.
type aAddr struct {
	s     kernelSpec
	bases []reg.Register // R form: one base per group of rowsPerBase rows
	ld    reg.Register   // lda in bytes
	ld3   reg.Register   // 3*lda in bytes
}

// rowsPerBase is how many rows one base register reaches in the R form,
// through the offsets 0, lda, 2*lda, 3*lda and 4*lda.
const rowsPerBase = 5

// newAAddr sets up the registers that address A, starting at register a
// with lda (in bytes) in register ld.
func newAAddr(s kernelSpec, a, ld reg.Register) *aAddr {
	x := &aAddr{s: s, ld: ld}
	x.ld3 = GP64()
	LEAQ(Mem{Base: ld, Index: ld, Scale: 2}, x.ld3)
	if !s.rows {
		x.bases = []reg.Register{a}
		return x
	}
	x.bases = append(x.bases, a)
	for g := 1; g*rowsPerBase < s.mr; g++ {
		r := GP64()
		// r = previous base + 5*lda
		LEAQ(Mem{Base: x.bases[g-1], Index: ld, Scale: 4}, r)
		ADDQ(ld, r)
		x.bases = append(x.bases, r)
	}
	return x
}

// at returns the address of A(i, p0+u) relative to the current position.
func (x *aAddr) at(i, u int) Mem {
	if x.s.rows {
		base := x.bases[i/rowsPerBase]
		m := Mem{Base: base, Disp: 4 * u}
		switch i % rowsPerBase {
		case 1:
			m.Index, m.Scale = x.ld, 1
		case 2:
			m.Index, m.Scale = x.ld, 2
		case 3:
			m.Index, m.Scale = x.ld3, 1
		case 4:
			m.Index, m.Scale = x.ld, 4
		}
		return m
	}
	m := Mem{Base: x.bases[0], Disp: 4 * i}
	switch u {
	case 1:
		m.Index, m.Scale = x.ld, 1
	case 2:
		m.Index, m.Scale = x.ld, 2
	case 3:
		m.Index, m.Scale = x.ld3, 1
	case 0:
	default:
		panic("unroll too large")
	}
	return m
}

// advance moves A forward by steps k steps.
func (x *aAddr) advance(steps int) {
	if x.s.rows {
		for _, r := range x.bases {
			ADDQ(U32(4*steps), r)
		}
		return
	}
	switch steps {
	case 1:
		ADDQ(x.ld, x.bases[0])
	case 4:
		LEAQ(Mem{Base: x.bases[0], Index: x.ld, Scale: 4}, x.bases[0])
	default:
		panic("bad step")
	}
}

// genKernel generates one form of the micro-kernel s: a register tile of
// accumulators, a k loop unrolled by unroll steps with a tail loop, and
// the alpha/beta update of C.
func genKernel(s kernelSpec) {
	nr := s.nvec * s.width
	nacc := s.mr * s.nvec
	nregs := 16
	if s.width == 16 || s.evex {
		nregs = 32
	}
	ntmp := 2
	if s.bcst {
		ntmp = 0
	}
	if nacc+s.nvec+ntmp > nregs {
		panic(fmt.Sprintf("%s: needs %d vector registers", s.name, nacc+s.nvec+ntmp))
	}
	acc := func(i, j int) reg.VecPhysical { return s.vec(i*s.nvec + j) }
	bv := func(j int) reg.VecPhysical { return s.vec(nacc + j) }
	tmp := func(i int) reg.VecPhysical { return s.vec(nacc + s.nvec + i%ntmp) }
	vbytes := 4 * s.width

	name := s.name + "P"
	form := "A(i, p) = a[i + p*lda]"
	if s.rows {
		name = s.name + "R"
		form = "A(i, p) = a[i*lda + p]"
	}
	if s.seg {
		name += "LS"
		TEXT(name, NOSPLIT, segSig)
		Doc(fmt.Sprintf("%s computes tiles %d×%d tiles C = alpha*A*Bp + beta*C over nseg segments of kc steps, A(i, s*kc + p) = a[s*segstep + i*lda + p], each tile %d rows of C and astep values of A beyond the previous one.", name, s.mr, nr, s.mr))
		Label(name + "_next")
	} else if s.loop {
		name += "L"
		TEXT(name, NOSPLIT, loopSig)
		Doc(fmt.Sprintf("%s computes tiles %d×%d tiles C = alpha*A*Bp + beta*C over kc steps, with %s, each %d rows of C and astep values of A beyond the previous one.", name, s.mr, nr, form, s.mr))
		// Each tile reloads the arguments, a and c advanced in their
		// slots by the previous one.
		Label(name + "_next")
	} else {
		TEXT(name, NOSPLIT, kernelSig)
		Doc(fmt.Sprintf("%s computes the %d×%d tile C = alpha*A*Bp + beta*C over kc steps, with %s.", name, s.mr, nr, form))
	}
	kc := Load(Param("kc"), GP64())
	a := Load(Param("a"), GP64())
	ld := Load(Param("lda"), GP64())
	SHLQ(U8(2), ld)
	b := Load(Param("b"), GP64())
	c := Load(Param("c"), GP64())
	ldc := Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)

	// Prefetch the C tile while the products accumulate.
	cp := GP64()
	MOVQ(c, cp)
	for i := 0; i < s.mr; i++ {
		PREFETCHT0(Mem{Base: cp})
		if nr*4 > 64 {
			PREFETCHT0(Mem{Base: cp, Disp: nr*4 - 4})
		}
		if i+1 < s.mr {
			ADDQ(ldc, cp)
		}
	}

	for i := 0; i < s.mr; i++ {
		for j := 0; j < s.nvec; j++ {
			r := acc(i, j)
			if s.width == 16 || s.evex {
				VPXORD(r, r, r)
			} else {
				VXORPS(r, r, r)
			}
		}
	}
	x := newAAddr(s, a, ld)

	step := func(u int) {
		for j := 0; j < s.nvec; j++ {
			VMOVUPS(Mem{Base: b, Disp: (u*s.nvec + j) * vbytes}, bv(j))
		}
		for i := 0; i < s.mr; i++ {
			am := x.at(i, u)
			if s.bcst {
				for j := 0; j < s.nvec; j++ {
					VFMADD231PS_BCST(am, bv(j), acc(i, j))
				}
				continue
			}
			t := tmp(i)
			VBROADCASTSS(am, t)
			for j := 0; j < s.nvec; j++ {
				VFMADD231PS(bv(j), t, acc(i, j))
			}
		}
	}

	// The segments: a counter in the frame, the k loops below once per
	// segment, A moved on to the next segment after each.
	var segLeft Mem
	if s.seg {
		segLeft = AllocLocal(8)
		nseg := GP64()
		Load(Param("nseg"), nseg)
		MOVQ(nseg, segLeft)
		Label(name + "_segment")
		Load(Param("kc"), kc)
	}

	// Main loop: unroll k steps at a time.
	n4 := GP64()
	MOVQ(kc, n4)
	SHRQ(U8(2), n4)
	JZ(LabelRef(name + "_tail"))
	// The R form streams A from memory row by row, in runs too short for
	// the hardware prefetchers; prefetch the next mr rows (the next sliver
	// of a row-major A, read by the following call) in step with the loop.
	//
	// The P form reads one group of mr values per k step, lda apart;
	// prefetch the group pfDist steps ahead.
	pf := GP64()
	if s.rows {
		IMUL3Q(U32(s.mr), ld, pf)
	} else {
		IMUL3Q(U32(pfDist), ld, pf)
	}
	ADDQ(a, pf)
	Label(name + "_loop")
	for u := 0; u < unroll; u++ {
		step(u)
		if s.rows {
			lines := (s.mr*4*unroll + 63) / 64
			for l := u; l < lines; l += unroll {
				PREFETCHT0(Mem{Base: pf, Disp: 64 * l})
			}
		} else {
			m := x.at(0, u)
			m.Base = pf
			PREFETCHT0(m)
			if s.mr*4 > 64 {
				m.Disp = s.mr*4 - 4
				PREFETCHT0(m)
			}
		}
	}
	if s.rows {
		ADDQ(U32(s.mr*4*unroll), pf)
	} else {
		LEAQ(Mem{Base: pf, Index: ld, Scale: 4}, pf)
	}
	x.advance(unroll)
	ADDQ(U32(unroll*4*nr), b)
	DECQ(n4)
	JNZ(LabelRef(name + "_loop"))

	// Remaining kc%unroll steps.
	Label(name + "_tail")
	ANDQ(U8(unroll-1), kc)
	JZ(LabelRef(name + "_segdone"))
	Label(name + "_tailloop")
	step(0)
	x.advance(1)
	ADDQ(U32(4*nr), b)
	DECQ(kc)
	JNZ(LabelRef(name + "_tailloop"))
	Label(name + "_segdone")
	if s.seg {
		// A has moved kc values along its rows: on by segstep - kc more.
		jump := GP64()
		Load(Param("segstep"), jump)
		SUBQ(paramMem("kc"), jump)
		SHLQ(U8(2), jump)
		for _, r := range x.bases {
			ADDQ(jump, r)
		}
		DECQ(segLeft)
		JNZ(LabelRef(name + "_segment"))
	}

	Label(name + "_store")
	c = Load(Param("c"), GP64())
	ldc = Load(Param("ldc"), GP64())
	SHLQ(U8(2), ldc)
	// alpha = 1, the usual case, needs no scaling (x·1 = x exactly): the
	// products of the Winograd convolution are only 16 to 32 k steps
	// deep, and the multiplications were ~4% of their kernel time.
	alphaBits := GP32()
	MOVL(paramMem("alpha"), alphaBits)
	CMPL(alphaBits, U32(0x3f800000))
	JE(LabelRef(name + "_scaled"))
	alphaV := bv(0)
	VBROADCASTSS(paramMem("alpha"), alphaV)
	for i := 0; i < s.mr; i++ {
		for j := 0; j < s.nvec; j++ {
			VMULPS(alphaV, acc(i, j), acc(i, j))
		}
	}
	Label(name + "_scaled")
	betaAddr := paramMem("beta")
	bits := GP32()
	MOVL(betaAddr, bits)
	ADDL(bits, bits) // drop the sign bit: -0 counts as zero
	JZ(LabelRef(name + "_overwrite"))

	// C = beta*C + alpha*acc.
	betaV := bv(0)
	VBROADCASTSS(betaAddr, betaV)
	for i := 0; i < s.mr; i++ {
		for j := 0; j < s.nvec; j++ {
			m := Mem{Base: c, Disp: j * vbytes}
			VFMADD231PS(m, betaV, acc(i, j))
			VMOVUPS(acc(i, j), m)
		}
		if i+1 < s.mr {
			ADDQ(ldc, c)
		}
	}
	if s.loop {
		JMP(LabelRef(name + "_advance"))
	} else {
		VZEROUPPER()
		RET()
	}

	Label(name + "_overwrite")
	for i := 0; i < s.mr; i++ {
		for j := 0; j < s.nvec; j++ {
			VMOVUPS(acc(i, j), Mem{Base: c, Disp: j * vbytes})
		}
		if i+1 < s.mr {
			ADDQ(ldc, c)
		}
	}
	if s.loop {
		// The next tile, while tiles counts down: a += astep, c +=
		// mr*ldc (in bytes), in their argument slots (left pointing at
		// the last tile: never past the operands).
		Label(name + "_advance")
		DECQ(paramMem("tiles"))
		JZ(LabelRef(name + "_done"))
		step := GP64()
		Load(Param("astep"), step)
		SHLQ(U8(2), step)
		ADDQ(step, paramMem("a"))
		cstep := GP64()
		Load(Param("ldc"), cstep)
		IMUL3Q(U32(4*s.mr), cstep, cstep)
		ADDQ(cstep, paramMem("c"))
		JMP(LabelRef(name + "_next"))
		Label(name + "_done")
	}
	VZEROUPPER()
	RET()
}

// paramMem returns the stack slot of the named argument.
func paramMem(name string) Mem {
	p, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return p.Addr
}
