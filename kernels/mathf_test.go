package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ulps returns the distance in float32 steps between got and the float64
// value want rounded to float32 (infinities and zeros compared exactly).
func ulps(got float32, want float64) float64 {
	w := float32(want)
	if got == w {
		return 0
	}
	if math.IsInf(float64(w), 0) || math.IsInf(float64(got), 0) || math.IsNaN(float64(got)) {
		return math.Inf(1)
	}
	step := math.Abs(float64(math.Nextafter32(w, float32(math.Inf(1))) - w))
	if w == 0 || math.Abs(float64(w)) < 0x1p-126 {
		step = 0x1p-149 // subnormal spacing
	}
	return math.Abs(float64(got)-float64(w)) / step
}

// TestExpTanh32 sweeps exp32 and tanh32 over every 997th float32 of their
// ranges, and the special values, against float64 math.
func TestExpTanh32(t *testing.T) {
	var worstE, worstT float64
	var atE, atT float32
	for b := uint32(0); b < 0xff800000; b += 997 {
		for _, x := range []float32{math.Float32frombits(b), -math.Float32frombits(b)} {
			if x != x {
				continue
			}
			if x >= exp32Min-1 && x <= exp32Max+1 {
				if u := ulps(exp32(x), math.Exp(float64(x))); u > worstE {
					worstE, atE = u, x
				}
			}
			if u := ulps(tanh32(x), math.Tanh(float64(x))); u > worstT {
				worstT, atT = u, x
			}
		}
	}
	if worstE > 2 {
		t.Errorf("exp32: %v ulp at %v", worstE, atE)
	}
	if worstT > 2 {
		t.Errorf("tanh32: %v ulp at %v", worstT, atT)
	}
	t.Logf("worst: exp32 %v ulp at %v, tanh32 %v ulp at %v", worstE, atE, worstT, atT)
	inf := float32(math.Inf(1))
	for _, c := range []struct{ x, exp, tanh float32 }{
		{0, 1, 0}, {inf, inf, 1}, {-inf, 0, -1}, {89, inf, 1}, {-104, 0, -1},
	} {
		if e := exp32(c.x); e != c.exp {
			t.Errorf("exp32(%v) = %v, want %v", c.x, e, c.exp)
		}
		if th := tanh32(c.x); th != c.tanh {
			t.Errorf("tanh32(%v) = %v, want %v", c.x, th, c.tanh)
		}
	}
	nan := float32(math.NaN())
	if e, th := exp32(nan), tanh32(nan); e == e || th == th {
		t.Errorf("exp32(NaN) = %v, tanh32(NaN) = %v", e, th)
	}
}

// TestLog32 sweeps log32 over every 97th positive float32 against float64
// math, and checks its special values.
func TestLog32(t *testing.T) {
	var worst float64
	var at float32
	for b := uint32(1); b < 0x7f800000; b += 97 {
		x := math.Float32frombits(b)
		if u := ulps(log32(x), math.Log(float64(x))); u > worst {
			worst, at = u, x
		}
	}
	if worst > 2 {
		t.Errorf("log32: %v ulp at %v", worst, at)
	}
	t.Logf("worst: log32 %v ulp at %v", worst, at)
	inf := float32(math.Inf(1))
	for _, c := range []struct{ x, want float32 }{
		{1, 0}, {0, -inf}, {float32(math.Copysign(0, -1)), -inf}, {inf, inf},
	} {
		if got := log32(c.x); got != c.want {
			t.Errorf("log32(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	for _, x := range []float32{-1, -inf, float32(math.NaN()), math.Float32frombits(0x80000001)} {
		if got := log32(x); got == got {
			t.Errorf("log32(%v) = %v, want NaN", x, got)
		}
	}
}

// TestMathKernels checks Exp, Tanh and Log of every kernel set bit for bit
// against exp32, tanh32 and log32, which TestExpTanh32 and TestLog32
// check against float64 math: on a sweep of every 9973rd float32 of both signs, where each
// vector mixes magnitudes (and so both branches of tanh and every special
// case), on random normal values at unaligned offsets with remainders,
// and in place.
func TestMathKernels(t *testing.T) {
	var sweep []float32
	for b := uint32(0); b < 0x7f800000; b += 9973 {
		sweep = append(sweep, math.Float32frombits(b), -math.Float32frombits(b))
	}
	sweep = append(sweep, specials...)
	for _, v := range []float32{exp32Max, exp32Min, 88.72284, 88.7229, -103.97209, -87.3, -87.4, 0.625, -0.625, 0.62499994, 9, 9.000001, -9.000001, 44.5, 0x1p-126, 0.70710677, 1, 2, 0.5} {
		sweep = append(sweep, v, math.Nextafter32(v, 0), math.Nextafter32(v, 200))
	}
	rng := rand.New(rand.NewPCG(5, 6))
	rng.Shuffle(len(sweep), func(i, j int) { sweep[i], sweep[j] = sweep[j], sweep[i] })
	ops := []struct {
		name   string
		vec    func(dst, src []float32)
		scalar func(float32) float32
	}{{"Exp", Exp, exp32}, {"Tanh", Tanh, tanh32}, {"Log", Log, log32}}
	forEachElemKernel(t, func(t *testing.T) {
		for _, op := range ops {
			want := make([]float32, len(sweep))
			for i, v := range sweep {
				want[i] = op.scalar(v)
			}
			got := make([]float32, len(sweep))
			op.vec(got, sweep)
			checkSame(t, op.name+" sweep", got, want)
			for _, n := range elemLengths {
				for _, off := range []int{0, 1, 3} {
					x := elemInput(rng, n, off, true)
					for i := range x {
						x[i] *= 20 // both tanh branches, exp's extremes
						if op.name == "Log" && rng.IntN(2) == 0 {
							x[i] = float32(math.Exp(float64(x[i]) * 4)) // ln's whole range
						}
					}
					want := make([]float32, n)
					for i, v := range x {
						want[i] = op.scalar(v)
					}
					got := make([]float32, n)
					op.vec(got, x)
					checkSame(t, fmt.Sprintf("%s n=%d off=%d", op.name, n, off), got, want)
					op.vec(x, x)
					checkSame(t, fmt.Sprintf("%s in place n=%d off=%d", op.name, n, off), x, want)
				}
			}
		}
	})
}
