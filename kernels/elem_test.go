package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// elemLengths are the flat lengths tested: around the 16-value unit and the
// 64-value main loop.
var elemLengths = []int{0, 1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 1000}

// elemChannels are the row widths tested: below 16 (widened pattern),
// multiples of 16, and wider widths with a remainder.
var elemChannels = []int{1, 2, 3, 4, 5, 7, 8, 12, 15, 16, 17, 24, 32, 33, 48, 64, 100}

// elemRows are the row counts tested.
var elemRows = []int{0, 1, 2, 3, 5, 16, 17, 48, 100}

// specials are values with edge-case bits, mixed into test inputs.
var specials = []float32{
	0, float32(math.Copysign(0, -1)), 1, -1,
	float32(math.Inf(1)), float32(math.Inf(-1)),
	float32(math.NaN()), math.Float32frombits(0xffc00001), // positive and negative NaN
	math.Float32frombits(1), math.Float32frombits(0x80000001), // ±smallest subnormal
	math.MaxFloat32, -math.MaxFloat32,
}

// elemInput returns n values at offset off (so the slice is unaligned for
// off % 16 != 0), normal, with some specials when withSpecials is set.
func elemInput(rng *rand.Rand, n, off int, withSpecials bool) []float32 {
	buf := make([]float32, n+off)
	s := buf[off:]
	for i := range s {
		s[i] = float32(rng.NormFloat64())
		if withSpecials && rng.IntN(8) == 0 {
			s[i] = specials[rng.IntN(len(specials))]
		}
	}
	return s
}

// withoutNaN replaces the NaNs of x by 1.5 and returns x.
func withoutNaN(x []float32) []float32 {
	for i, v := range x {
		if v != v {
			x[i] = 1.5
		}
	}
	return x
}

// sameBits reports whether a and b are equal bit for bit, any NaN
// matching any NaN.
func sameBits(a, b float32) bool {
	if a != a && b != b {
		return true
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// checkSame fails unless got and want match bit for bit.
func checkSame(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !sameBits(got[i], want[i]) {
			t.Fatalf("%s [%s]: element %d = %v (%#x), want %v (%#x)", what, ElemKernel(), i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// refRelu is max(v, 0) on the sign bit.
func refRelu(v float32) float32 {
	if math.Float32bits(v)>>31 == 1 {
		return 0
	}
	return v
}

// refPositive reports whether y > 0, counting positive NaNs.
func refPositive(y float32) bool {
	return y > 0 || (y != y && math.Float32bits(y)>>31 == 0)
}

// forEachElemKernel runs f with every kernel set, checking that
// SetMicroKernel selected the elementwise set of the same name.
func forEachElemKernel(t *testing.T, f func(t *testing.T)) {
	forEachKernel(t, func(t *testing.T) {
		if ElemKernel() != MicroKernel() {
			t.Fatalf("SetMicroKernel(%q) selected elementwise kernels %q", MicroKernel(), ElemKernel())
		}
		f(t)
	})
}

func TestElemKernelNames(t *testing.T) {
	if got, want := ElemKernel(), MicroKernel(); got != want {
		t.Errorf("default elementwise kernels %q, micro-kernel %q", got, want)
	}
	if len(elemList) != len(kernelList) {
		t.Errorf("%d elementwise kernel sets for %d micro-kernels", len(elemList), len(kernelList))
	}
}

func TestFlatKernels(t *testing.T) {
	forEachElemKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 3))
		for _, n := range elemLengths {
			for _, off := range []int{0, 1, 3} {
				what := func(op string) string { return fmt.Sprintf("%s n=%d off=%d", op, n, off) }
				a := elemInput(rng, n, off, true)
				b := elemInput(rng, n, off+1, true)
				y := elemInput(rng, n, 2, true)
				want := make([]float32, n)

				// AddTo
				got := append([]float32(nil), a...)
				for i := range want {
					want[i] = a[i] + b[i]
				}
				AddTo(got, b)
				checkSame(t, what("AddTo"), got, want)

				// Add, also in place
				got = elemInput(rng, n, 5, false)
				Add(got, a, b)
				checkSame(t, what("Add"), got, want)
				got = append([]float32(nil), a...)
				Add(got, got, b)
				checkSame(t, what("Add in place"), got, want)

				// Mul, also in place
				for i := range want {
					want[i] = a[i] * b[i]
				}
				got = elemInput(rng, n, 5, false)
				Mul(got, a, b)
				checkSame(t, what("Mul"), got, want)
				got = append([]float32(nil), a...)
				Mul(got, got, b)
				checkSame(t, what("Mul in place"), got, want)

				// ReluForward, also in place
				for i := range want {
					want[i] = refRelu(a[i])
				}
				got = elemInput(rng, n, 2, false)
				ReluForward(got, a)
				checkSame(t, what("ReluForward"), got, want)
				got = append([]float32(nil), a...)
				ReluForward(got, got)
				checkSame(t, what("ReluForward in place"), got, want)

				// ReluBackward
				for i := range want {
					g := float32(0) // masked-off gradients add +0, as tensor.Relu did
					if refPositive(y[i]) {
						g = b[i]
					}
					want[i] = a[i] + g
				}
				got = append([]float32(nil), a...)
				ReluBackward(got, b, y)
				checkSame(t, what("ReluBackward"), got, want)
			}
		}
	})
}

// refAffine returns the reference of AffineRows (and with relu set,
// AffineReluRows).
func refAffine(src, a, b []float32, relu bool) []float32 {
	c := len(a)
	out := make([]float32, len(src))
	for i, v := range src {
		y := float32(v*a[i%c]) + b[i%c]
		if relu {
			y = refRelu(y)
		}
		out[i] = y
	}
	return out
}

// refAffineGrad returns the reference of AffineGradRows (y nil) and
// AffineReluGradRows; gx nil stands for accumulate false.
func refAffineGrad(gx, gy, y, x, k1, k2, k3 []float32) []float32 {
	c := len(k1)
	out := append([]float32(nil), gx...)
	if gx == nil {
		out = make([]float32, len(gy))
	}
	for i := range out {
		g := gy[i]
		if y != nil && !refPositive(y[i]) {
			g = 0
		}
		j := i % c
		t1 := k1[j] * g
		t2 := k2[j] * x[i]
		t := t1 + t2
		t += k3[j]
		if gx == nil {
			out[i] = t
		} else {
			out[i] += t
		}
	}
	return out
}

func TestRowKernels(t *testing.T) {
	forEachElemKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(4, 4))
		for _, c := range elemChannels {
			for _, rows := range elemRows {
				n := rows * c
				off := (c + rows) % 4
				what := func(op string) string { return fmt.Sprintf("%s c=%d rows=%d off=%d", op, c, rows, off) }
				src := elemInput(rng, n, off, true)
				// Scale and shift get infinities and zeros but no NaN:
				// of two NaN operands, which one an instruction returns
				// depends on operand order, which the compiler chooses
				// (a -race build chose otherwise), and a ReLU turns the
				// NaN's sign into NaN against 0.
				a := withoutNaN(elemInput(rng, c, 1, true))
				b := withoutNaN(elemInput(rng, c, 2, true))
				for _, relu := range []bool{false, true} {
					op, f := "AffineRows", AffineRows
					if relu {
						op, f = "AffineReluRows", AffineReluRows
					}
					want := refAffine(src, a, b, relu)
					got := elemInput(rng, n, 3, false)
					f(got, src, a, b)
					checkSame(t, what(op), got, want)
					got = append([]float32(nil), src...)
					f(got, got, a, b)
					checkSame(t, what(op+" in place"), got, want)
				}

				gx := elemInput(rng, n, 1, true)
				gy := elemInput(rng, n, off, true)
				x := elemInput(rng, n, 2, true)
				y := elemInput(rng, n, 3, true)
				k1 := elemInput(rng, c, 0, false)
				k2 := elemInput(rng, c, 1, false)
				k3 := elemInput(rng, c, 2, false)
				got := append([]float32(nil), gx...)
				AffineGradRows(got, gy, x, k1, k2, k3, true)
				checkSame(t, what("AffineGradRows"), got, refAffineGrad(gx, gy, nil, x, k1, k2, k3))
				got = append([]float32(nil), gx...)
				AffineReluGradRows(got, gy, y, x, k1, k2, k3, true)
				checkSame(t, what("AffineReluGradRows"), got, refAffineGrad(gx, gy, y, x, k1, k2, k3))
				// Overwriting ignores what gx holds, NaNs included.
				nan := make([]float32, n)
				for i := range nan {
					nan[i] = float32(math.NaN())
				}
				got = append([]float32(nil), nan...)
				AffineGradRows(got, gy, x, k1, k2, k3, false)
				checkSame(t, what("AffineGradRows set"), got, refAffineGrad(nil, gy, nil, x, k1, k2, k3))
				got = append([]float32(nil), nan...)
				AffineReluGradRows(got, gy, y, x, k1, k2, k3, false)
				checkSame(t, what("AffineReluGradRows set"), got, refAffineGrad(nil, gy, y, x, k1, k2, k3))
			}
		}
	})
}

// refColumns returns the float64 column sums of v (masked by y > 0 when y
// is not nil) and of its products with w, and the sums of their absolute
// values, the scale of the rounding error.
func refColumns(c int, v, y, w []float32) (sum, prod, absSum, absProd []float64) {
	sum, prod = make([]float64, c), make([]float64, c)
	absSum, absProd = make([]float64, c), make([]float64, c)
	for i, a := range v {
		if y != nil && !refPositive(y[i]) {
			a = 0
		}
		j := i % c
		sum[j] += float64(a)
		absSum[j] += math.Abs(float64(a))
		if w != nil {
			p := float64(a) * float64(w[i])
			prod[j] += p
			absProd[j] += math.Abs(p)
		}
	}
	return sum, prod, absSum, absProd
}

// checkSums fails unless got, which started at start, holds start plus
// want within a float64 rounding bound for n terms.
func checkSums(t *testing.T, what string, got, start, want, abs []float64, n int) {
	t.Helper()
	tol := float64(n+4) * 0x1p-52
	for j := range got {
		d := math.Abs(got[j] - (start[j] + want[j]))
		if !(d <= tol*(abs[j]+math.Abs(start[j]))) {
			t.Fatalf("%s [%s]: column %d = %v, want %v (err %.3g)", what, ElemKernel(), j, got[j], start[j]+want[j], d)
		}
	}
}

func TestColumnKernels(t *testing.T) {
	forEachElemKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 5))
		for _, c := range elemChannels {
			for _, rows := range append(elemRows, 1200) {
				n := rows * c
				off := (c + rows) % 4
				what := func(op string) string { return fmt.Sprintf("%s c=%d rows=%d off=%d", op, c, rows, off) }
				v := elemInput(rng, n, off, false)
				w := elemInput(rng, n, 1, false)
				y := elemInput(rng, n, 2, true)
				start := make([]float64, c)
				for j := range start {
					start[j] = rng.NormFloat64()
				}
				// The sums add to what is there.
				sum := append([]float64(nil), start...)
				rs, _, ra, _ := refColumns(c, v, nil, nil)
				ColumnSums(sum, v)
				checkSums(t, what("ColumnSums"), sum, start, rs, ra, rows)

				sum = append([]float64(nil), start...)
				prod := append([]float64(nil), start...)
				rs, rp, ra, rap := refColumns(c, v, nil, w)
				ColumnMoments(sum, prod, v, w)
				checkSums(t, what("ColumnMoments sum"), sum, start, rs, ra, rows)
				checkSums(t, what("ColumnMoments prod"), prod, start, rp, rap, rows)

				sum = append([]float64(nil), start...)
				prod = append([]float64(nil), start...)
				rs, rp, ra, rap = refColumns(c, v, nil, v)
				ColumnMoments(sum, prod, v, nil)
				checkSums(t, what("ColumnMoments squares"), prod, start, rp, rap, rows)

				sum = append([]float64(nil), start...)
				prod = append([]float64(nil), start...)
				rs, rp, ra, rap = refColumns(c, v, y, w)
				ColumnMomentsRelu(sum, prod, v, y, w)
				checkSums(t, what("ColumnMomentsRelu sum"), sum, start, rs, ra, rows)
				checkSums(t, what("ColumnMomentsRelu prod"), prod, start, rp, rap, rows)
			}
		}
	})
}

// TestColumnMomentsVariance checks the batch-norm use of ColumnMoments:
// the one-pass variance E[x²] - E[x]² of channels with a large mean and a
// small spread, against a two-pass float64 reference on the same data.
// Channel j has mean 10(j+1) and standard deviation 0.01, so x²/var reaches
// 1e7: float32 sums (relative error ≥ 2⁻²⁴ per term) would lose the
// variance entirely. Float64 sums of n terms err by at most n·2⁻⁵² relative
// to Σx², so the variance errs by at most n·2⁻⁵²·x²/var ≈ 1e-4 of itself
// in the worst channel (random rounding errors make it far smaller).
func TestColumnMomentsVariance(t *testing.T) {
	forEachElemKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(6, 6))
		for _, c := range []int{1, 3, 16, 17, 32} {
			const rows = 50000
			v := make([]float32, rows*c)
			for i := range v {
				v[i] = float32(10*float64(i%c+1) + 0.01*rng.NormFloat64())
			}
			sum, sq := make([]float64, c), make([]float64, c)
			ColumnMoments(sum, sq, v, nil)
			for j := 0; j < c; j++ {
				var m float64
				for r := 0; r < rows; r++ {
					m += float64(v[r*c+j])
				}
				m /= rows
				var want float64
				for r := 0; r < rows; r++ {
					d := float64(v[r*c+j]) - m
					want += d * d
				}
				want /= rows
				mean := sum[j] / rows
				got := sq[j]/rows - mean*mean
				bound := rows * 0x1p-52 * mean * mean
				if d := math.Abs(got - want); d > bound || d > 1e-4*want {
					t.Errorf("c=%d channel %d: variance %.9g, want %.9g (err %.3g, bound %.3g)", c, j, got, want, d, bound)
				}
			}
		}
	})
}

func TestElemPanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"AddTo lengths", func() { AddTo(make([]float32, 3), make([]float32, 4)) }},
		{"Add lengths", func() { Add(make([]float32, 3), make([]float32, 3), make([]float32, 2)) }},
		{"ReluBackward lengths", func() { ReluBackward(make([]float32, 3), make([]float32, 3), make([]float32, 2)) }},
		{"AffineRows rows", func() { AffineRows(make([]float32, 5), make([]float32, 5), make([]float32, 2), make([]float32, 2)) }},
		{"AffineRows b", func() { AffineRows(make([]float32, 4), make([]float32, 4), make([]float32, 2), make([]float32, 1)) }},
		{"AffineRows no channels", func() { AffineRows(make([]float32, 4), make([]float32, 4), nil, nil) }},
		{"AffineGradRows k3", func() {
			AffineGradRows(make([]float32, 4), make([]float32, 4), make([]float32, 4), make([]float32, 2), make([]float32, 2), make([]float32, 1), true)
		}},
		{"ColumnSums rows", func() { ColumnSums(make([]float64, 3), make([]float32, 4)) }},
		{"ColumnMoments w", func() { ColumnMoments(make([]float64, 2), make([]float64, 2), make([]float32, 4), make([]float32, 2)) }},
		{"ColumnMomentsRelu y", func() {
			ColumnMomentsRelu(make([]float64, 2), make([]float64, 2), make([]float32, 4), make([]float32, 2), make([]float32, 4))
		}},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Errorf("%s: no panic", tc.name)
				}
			}()
			tc.fn()
		}()
	}
}
