package kernels

import "math"

// Float32 exponential and hyperbolic tangent for the elementwise
// operations: Cephes' expf and tanhf (S. Moshier), evaluated in float32.
// They stay within 2 ulp of the correctly rounded results (TestExpTanh32
// sweeps the float32 range against math.Exp and math.Tanh). The scalar
// versions were 3-5 times faster than rounding the float64 functions; the
// assembly kernels (internal/elemgen/mathf.go) compute 16 values at a
// time with the same operations in the same order, so every path returns
// the same bits.

// The scalar functions convert every product that feeds a sum to float32
// explicitly: from GOAMD64=v3 on, the compiler may otherwise fuse a*b + c
// into one multiply-add, rounding once where the assembly rounds twice.

// Exp sets dst[i] = e^src[i] (exp32). The slices must have equal lengths;
// dst may be src.
func Exp(dst, src []float32) { unaryMath("Exp", dst, src, elem().exp, exp32) }

// Tanh sets dst[i] = tanh src[i] (tanh32). The slices must have equal
// lengths; dst may be src.
func Tanh(dst, src []float32) { unaryMath("Tanh", dst, src, elem().tanh, tanh32) }

// unaryMath sets dst[i] = scalar(src[i]), through the kernel f (nil: none)
// for whole units and scalar for the rest.
func unaryMath(op string, dst, src []float32, f func(dst, src *float32, n int), scalar func(float32) float32) {
	n := len(dst)
	mustLen(op, n, len(src))
	i := 0
	if f != nil && n >= unit {
		i = n &^ (unit - 1)
		f(&dst[0], &src[0], i)
	}
	for j, v := range src[i:n] {
		dst[i+j] = scalar(v)
	}
}

const (
	exp32Max   = 88.72283935546875 // above: +Inf
	exp32Min   = -103.972084045410 // below: 0
	exp32Log2e = 1.44269504088896341
	exp32C1    = 0.693359375 // ln 2 = C1 + C2, C1 exact in few bits
	exp32C2    = -2.12194440e-4
)

// exp32 returns e^x.
func exp32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > exp32Max:
		return float32(math.Inf(1))
	case x < exp32Min:
		return 0
	}
	// x = n ln2 + r, |r| <= ln2/2: n = round(x log2 e), by adding and
	// subtracting 1.5·2^23, which leaves the integer in the low bits.
	const shifter = 0x1.8p23
	f := float32(x*exp32Log2e) + shifter
	n := int32(math.Float32bits(f) - math.Float32bits(shifter))
	nf := f - shifter
	r := x - float32(nf*exp32C1)
	r -= float32(nf * exp32C2)
	p := float32(1.9875691500e-4)
	p = float32(p*r) + 1.3981999507e-3
	p = float32(p*r) + 8.3334519073e-3
	p = float32(p*r) + 4.1665795894e-2
	p = float32(p*r) + 1.6666665459e-1
	p = float32(p*r) + 5.0000001201e-1
	y := float32(p*float32(r*r)) + r + 1
	// y·2^n; below 2^-126 in two steps, the second rounding once.
	if n < -125 {
		return float32(float32(y*math.Float32frombits(uint32(n+127+64)<<23)) * math.Float32frombits(uint32(127-64)<<23))
	}
	if n > 127 {
		return float32(float32(y*2) * math.Float32frombits(uint32(n-1+127)<<23))
	}
	return float32(y * math.Float32frombits(uint32(n+127)<<23))
}

// tanh32 returns tanh x.
func tanh32(x float32) float32 {
	a := x
	if a < 0 {
		a = -a
	}
	switch {
	case x != x:
		return x
	case a > 9:
		if x < 0 {
			return -1
		}
		return 1
	case a >= 0.625:
		t := 1 - 2/(exp32(a+a)+1)
		if x < 0 {
			return -t
		}
		return t
	}
	z := x * x
	p := float32(-5.70498872745e-3)
	p = float32(p*z) + 2.06390887954e-2
	p = float32(p*z) - 5.37397155531e-2
	p = float32(p*z) + 1.33314422036e-1
	p = float32(p*z) - 3.33332819422e-1
	return float32(p*z*x) + x
}

// Log sets dst[i] = ln src[i] (log32). The slices must have equal lengths;
// dst may be src.
func Log(dst, src []float32) { unaryMath("Log", dst, src, elem().log, log32) }

const (
	log32Sqrt1_2 = 0.707106781186547524 // √½
	log32Min     = 0x1p-126             // the smallest normal float32
)

// log32 returns ln x (Cephes' logf): x = m·2^e with m in [√½, √2), and
// ln x = e ln 2 + ln m, ln(1+f) = f - f²/2 + f³·P(f) for f = m-1.
func log32(x float32) float32 {
	switch {
	case x != x:
		return x
	case x < 0:
		return float32(math.NaN())
	case x == 0:
		return float32(math.Inf(-1))
	case x > math.MaxFloat32:
		return x
	}
	// frexp: x = m·2^e, m in [½, 1); subnormals scaled up first.
	var e int32
	if x < log32Min {
		x *= 0x1p25
		e = -25
	}
	b := math.Float32bits(x)
	e += int32(b>>23) - 126
	m := math.Float32frombits(b&0x807fffff | 0x3f000000)
	if m < log32Sqrt1_2 {
		e--
		m = m + m - 1
	} else {
		m = m - 1
	}
	z := m * m
	y := float32(7.0376836292e-2)
	y = float32(y*m) - 1.1514610310e-1
	y = float32(y*m) + 1.1676998740e-1
	y = float32(y*m) - 1.2420140846e-1
	y = float32(y*m) + 1.4249322787e-1
	y = float32(y*m) - 1.6668057665e-1
	y = float32(y*m) + 2.0000714765e-1
	y = float32(y*m) - 2.4999993993e-1
	y = float32(y*m) + 3.3333331174e-1
	y = float32(y * m * z)
	fe := float32(e)
	y += float32(-2.12194440e-4 * fe)
	y += float32(-0.5 * z)
	r := m + y
	r += float32(0.693359375 * fe)
	return r
}
