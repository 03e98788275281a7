package main

import (
	"fmt"
	"math"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The exponential, hyperbolic tangent and logarithm kernels: vector
// versions of package kernels' exp32, tanh32 and log32 (Cephes' expf,
// tanhf and logf) that perform the same float32 operations in the same
// order, without fused multiply-adds, and so return the same bits. Both branches of a
// piecewise definition are computed for every lane and the results
// blended; the special cases (NaN, overflow, underflow) are blended in
// last, as the scalar code tests them first.

// Comparison predicates of VCMPPS (ordered and quiet unless named).
const (
	cmpEQ    = 0x00
	cmpUnord = 0x03
	cmpLT    = 0x11
	cmpGE    = 0x1d
	cmpGT    = 0x1e
)

// vconsts holds the 64-byte constants made so far, by their bits.
var vconsts = map[uint32]Mem{}

// vbits returns a read-only 64-byte vector of 16 copies of the 32-bit
// value b: a full-width memory operand for AVX-512 and, by its first 32
// bytes, for AVX2.
func vbits(b uint32) Mem {
	if m, ok := vconsts[b]; ok {
		return m
	}
	m := GLOBL(fmt.Sprintf("vconst_%08x", b), RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		DATA(4*i, U32(b))
	}
	vconsts[b] = m
	return m
}

// vf returns the vector constant of float32 value f.
func vf(f float32) Mem { return vbits(math.Float32bits(f)) }

// where sets dst to val in the lanes where a pred b holds.
func (s isa) where(pred uint8, a reg.VecVirtual, b, val Op, dst reg.VecVirtual) {
	if s.width == 16 {
		k := K()
		VCMPPS(U8(pred), b, a, k)
		VMOVUPS(val, k, dst)
		return
	}
	m := s.vec()
	VCMPPS(U8(pred), b, a, m)
	VBLENDVPS(m, val, dst, dst)
}

// whereNaN sets dst to x in the lanes where x is NaN.
func (s isa) whereNaN(x, dst reg.VecVirtual) { s.where(cmpUnord, x, x, x, dst) }

// and, or and xor are the bitwise operations dst = a op b (AVX-512F has
// them only as integer operations).
func (s isa) and(b Op, a, dst reg.VecVirtual) {
	if s.width == 16 {
		VPANDD(b, a, dst)
	} else {
		VPAND(b, a, dst)
	}
}

func (s isa) or(b Op, a, dst reg.VecVirtual) {
	if s.width == 16 {
		VPORD(b, a, dst)
	} else {
		VPOR(b, a, dst)
	}
}

func (s isa) xor(b Op, a, dst reg.VecVirtual) {
	if s.width == 16 {
		VPXORD(b, a, dst)
	} else {
		VPXOR(b, a, dst)
	}
}

// horner returns ((c₀·x + c₁)·x + ...)·x + c_last, rounding each
// operation.
func (s isa) horner(x reg.VecVirtual, c []float32) reg.VecVirtual {
	p := s.vec()
	VMOVUPS(vf(c[0]), p)
	for _, v := range c[1:] {
		VMULPS(x, p, p)
		VADDPS(vf(v), p, p)
	}
	return p
}

// The constants of exp32 and tanh32 (kernels/mathf.go), rounded to float32
// as Go rounds them there.
const (
	exp32Max   = 88.72283935546875
	exp32Min   = -103.972084045410
	exp32Log2e = 1.44269504088896341
	exp32C1    = 0.693359375
	exp32C2    = -2.12194440e-4
)

var (
	expPoly  = []float32{1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1}
	tanhPoly = []float32{-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1, -3.33332819422e-1}
)

// exp returns e^x in a new register: x = n ln 2 + r with n = round(x
// log₂e) (ties to even, as the scalar code's shifter addition), e^r by
// its polynomial, then ·2ⁿ as ·2^⌊n/2⌋·2^(n-⌊n/2⌋): the first product is
// exact and the second rounds once, so the result is y·2ⁿ correctly
// rounded, which is what the scalar code's one or two products give.
func (s isa) exp(x reg.VecVirtual) reg.VecVirtual {
	f := s.vec()
	VMULPS(vf(exp32Log2e), x, f)
	n := s.vec()
	VCVTPS2DQ(f, n)
	nf := s.vec()
	VCVTDQ2PS(n, nf)
	t := s.vec()
	VMULPS(vf(exp32C1), nf, t)
	r := s.vec()
	VSUBPS(t, x, r)
	VMULPS(vf(exp32C2), nf, t)
	VSUBPS(t, r, r)
	y := s.horner(r, expPoly)
	VMULPS(r, r, t)
	VMULPS(t, y, y)
	VADDPS(r, y, y)
	VADDPS(vf(1), y, y)
	h := s.vec()
	VPSRAD(U8(1), n, h)
	VPSUBD(h, n, n)
	VPADDD(vbits(127), h, h)
	VPSLLD(U8(23), h, h)
	VPADDD(vbits(127), n, n)
	VPSLLD(U8(23), n, n)
	VMULPS(h, y, y)
	VMULPS(n, y, y)
	s.where(cmpGT, x, vf(exp32Max), vf(float32(math.Inf(1))), y)
	s.where(cmpLT, x, vf(exp32Min), vf(0), y)
	s.whereNaN(x, y)
	return y
}

// tanh returns tanh x in a new register: 1 - 2/(e^{2|x|} + 1) with the
// sign of x for |x| >= 0.625, ±1 beyond 9, the odd polynomial below.
func (s isa) tanh(x reg.VecVirtual) reg.VecVirtual {
	a := s.vec()
	s.and(vbits(0x7fffffff), x, a)
	aa := s.vec()
	VADDPS(a, a, aa)
	e := s.exp(aa)
	VADDPS(vf(1), e, e)
	big := s.vec()
	VMOVUPS(vf(2), big)
	VDIVPS(e, big, big)
	q := s.vec()
	VMOVUPS(vf(1), q)
	VSUBPS(big, q, q)
	sign := s.vec()
	s.and(vbits(0x80000000), x, sign)
	s.xor(sign, q, q)
	z := s.vec()
	VMULPS(x, x, z)
	p := s.horner(z, tanhPoly)
	VMULPS(z, p, p)
	VMULPS(x, p, p)
	VADDPS(x, p, p)
	s.where(cmpGE, a, vf(0.625), q, p)
	s.or(vf(1), sign, sign)
	s.where(cmpGT, a, vf(9), sign, p)
	s.whereNaN(x, p)
	return p
}

var logPoly = []float32{7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1}

// log returns ln x in a new register: x = m·2^e with m in [√½, √2) from
// the exponent and mantissa bits (subnormals scaled by 2²⁵ first), then
// e ln 2 + ln m with ln m by its polynomial in m-1.
func (s isa) log(x reg.VecVirtual) reg.VecVirtual {
	xs := s.vec()
	VMULPS(vf(0x1p25), x, xs)
	adj := s.vec()
	s.zero(adj)
	norm := s.vec()
	VMOVUPS(x, norm)
	s.where(cmpLT, x, vf(0x1p-126), xs, norm)
	s.where(cmpLT, x, vf(0x1p-126), vbits(uint32(0x100000000-25)), adj)
	e := s.vec()
	VPSRLD(U8(23), norm, e)
	VPSUBD(vbits(126), e, e)
	VPADDD(adj, e, e)
	m := s.vec()
	s.and(vbits(0x807fffff), norm, m)
	s.or(vbits(0x3f000000), m, m)
	// m < √½: e-1 and m+m-1, else m-1.
	lo := s.vec()
	VADDPS(m, m, lo)
	VSUBPS(vf(1), lo, lo)
	e1 := s.vec()
	VPSUBD(vbits(1), e, e1)
	f := s.vec()
	VSUBPS(vf(1), m, f)
	s.where(cmpLT, m, vf(0.707106781186547524), lo, f)
	s.where(cmpLT, m, vf(0.707106781186547524), e1, e)
	z := s.vec()
	VMULPS(f, f, z)
	y := s.horner(f, logPoly)
	VMULPS(f, y, y)
	VMULPS(z, y, y)
	fe := s.vec()
	VCVTDQ2PS(e, fe)
	t := s.vec()
	VMULPS(vf(-2.12194440e-4), fe, t)
	VADDPS(t, y, y)
	VMULPS(vf(-0.5), z, t)
	VADDPS(t, y, y)
	VADDPS(y, f, y)
	VMULPS(vf(0.693359375), fe, t)
	VADDPS(t, y, y)
	s.where(cmpGT, x, vf(math.MaxFloat32), x, y)
	s.where(cmpEQ, x, vf(0), vf(float32(math.Inf(-1))), y)
	s.where(cmpLT, x, vf(0), vbits(0x7fc00000), y)
	s.whereNaN(x, y)
	return y
}

// mathFlats are the flat kernels of the functions above.
var mathFlats = []flatSpec{
	{
		name: "exp", doc: "sets dst[i] = e^src[i] as exp32 (mathf.go) computes it", ptrs: []string{"dst", "src"},
		body: func(s isa, p []reg.GPVirtual, off int, _ reg.VecVirtual) {
			x := s.load(Mem{Base: p[1], Disp: off})
			VMOVUPS(s.exp(x), Mem{Base: p[0], Disp: off})
		},
	},
	{
		name: "tanh", doc: "sets dst[i] = tanh src[i] as tanh32 (mathf.go) computes it", ptrs: []string{"dst", "src"},
		body: func(s isa, p []reg.GPVirtual, off int, _ reg.VecVirtual) {
			x := s.load(Mem{Base: p[1], Disp: off})
			VMOVUPS(s.tanh(x), Mem{Base: p[0], Disp: off})
		},
	},
	{
		name: "log", doc: "sets dst[i] = ln src[i] as log32 (mathf.go) computes it", ptrs: []string{"dst", "src"},
		body: func(s isa, p []reg.GPVirtual, off int, _ reg.VecVirtual) {
			x := s.load(Mem{Base: p[1], Disp: off})
			VMOVUPS(s.log(x), Mem{Base: p[0], Disp: off})
		},
	},
}
