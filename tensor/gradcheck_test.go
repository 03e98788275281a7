package tensor

// Forward values and backward passes of every operation, checked against
// independent float64 reference implementations written here with naive
// loops. For each case, checkGrad
//
//   - compares the engine's output with the reference forward,
//   - builds L = sum(r * op(inputs)) for a fixed random r (the r-weighted sum
//     is a node defined in this file, so no engine operation is involved in
//     the loss itself), runs Backward, and compares the gradient of every
//     input that requires gradients with central finite differences of the
//     float64 reference (step 1e-4, so the reference gradient is accurate to
//     ~1e-8) on the max-norm,
//   - pre-seeds the inputs' Grad with known values, so a backward pass that
//     overwrites Grad instead of accumulating into it fails,
//   - checks that the inputs were not modified and that constants received
//     no gradient,
//   - reruns the engine in a gradient-free pass and checks that nothing is recorded and
//     the values are identical.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// arr is a float64 reference array in the same row-major layout as Tensor.
type arr struct {
	shape []int
	data  []float64
}

func newArr(shape ...int) arr {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return arr{shape: append([]int(nil), shape...), data: make([]float64, n)}
}

func toArr(t *Tensor) arr {
	a := newArr(t.Shape...)
	for i, v := range t.Data {
		a.data[i] = float64(v)
	}
	return a
}

// gradOpts are the tolerances of checkGrad; zero fields take the defaults.
type gradOpts struct {
	// forward: |y - ref| <= fwdRtol*|ref| + fwdAtol*max|ref| elementwise
	fwdRtol, fwdAtol float64
	// backward: max|g - fd| <= gradTol*max|fd| per input
	gradTol float64
	// samples is the number of finite-difference coordinates per input,
	// spread evenly over it; 0 means all of them.
	samples int
	// step is the finite-difference step.
	step float64
	// noGradMayDiffer allows the gradient-free output to differ from the
	// recorded one in its last bits (it must still be as close to the
	// reference): for convolutions that take another algorithm without
	// a backward pass (implicitForward).
	noGradMayDiffer bool
}

func (o gradOpts) withDefaults() gradOpts {
	if o.fwdRtol == 0 {
		o.fwdRtol = 1e-6
	}
	if o.fwdAtol == 0 {
		o.fwdAtol = 1e-7
	}
	if o.gradTol == 0 {
		o.gradTol = 1e-3
	}
	if o.step == 0 {
		o.step = 1e-4
	}
	return o
}

// gemmTol suits results that are float32 sums of many products.
var gemmTol = gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-5}

// dotLoss returns the one-element tensor sum(r*y), recorded directly with
// its own backward closure.
func dotLoss(y *Tensor, r []float64) *Tensor {
	var s float64
	for i, v := range y.Data {
		s += float64(v) * r[i]
	}
	loss := FromData([]float32{float32(s)}, 1)
	record(loss, func() {
		g := y.grad()
		for i := range g {
			g[i] += float32(r[i]) * loss.Grad[0]
		}
	}, y)
	return loss
}

// checkClose reports elements of got that differ from want by more than
// rtol*|want| + atol*max|want|.
func checkClose(t *testing.T, what string, got []float32, want []float64, rtol, atol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, want %d", what, len(got), len(want))
		return
	}
	scale := 0.0
	for _, v := range want {
		scale = math.Max(scale, math.Abs(v))
	}
	bad, worst, worstI := 0, 0.0, -1
	for i, w := range want {
		d := math.Abs(float64(got[i]) - w)
		if !(d <= rtol*math.Abs(w)+atol*scale) { // catches NaN
			bad++
			if e := d / (math.Abs(w) + scale + 1e-300); worstI < 0 || e > worst || math.IsNaN(d) {
				worst, worstI = e, i
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values off; worst at %d: got %v, want %v", what, bad, len(want), worstI, got[worstI], want[worstI])
	}
}

// sampleIndices returns k indices spread evenly over [0, n) (all when k is
// 0 or at least n), always including the first and the last.
func sampleIndices(n, k int) []int {
	if k <= 0 || k >= n {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := make([]int, 0, k)
	for s := 0; s < k; s++ {
		idx = append(idx, s*(n-1)/(k-1))
	}
	return idx
}

// checkGrad checks engine against ref on inputs with the default
// tolerances. Inputs that require gradients are differentiated; the others
// are constants. inputs themselves are not modified.
func checkGrad(t *testing.T, name string, inputs []*Tensor, engine func([]*Tensor) *Tensor, ref func([]arr) arr) {
	t.Helper()
	checkGradOpts(t, name, inputs, engine, ref, gradOpts{})
}

func checkGradOpts(t *testing.T, name string, inputs []*Tensor, engine func([]*Tensor) *Tensor, ref func([]arr) arr, o gradOpts) {
	t.Helper()
	o = o.withDefaults()
	fresh := func() []*Tensor {
		ins := make([]*Tensor, len(inputs))
		for i, x := range inputs {
			ins[i] = x.Clone().SetRequiresGrad(x.RequiresGrad())
		}
		return ins
	}
	refIn := make([]arr, len(inputs))
	anyDiff := false
	for i, x := range inputs {
		refIn[i] = toArr(x)
		anyDiff = anyDiff || x.RequiresGrad()
	}

	// Forward.
	want := ref(refIn)
	ins := fresh()
	y := engine(ins)
	if !SameShape(y.Shape, want.shape) {
		t.Errorf("%s: shape %v, want %v", name, y.Shape, want.shape)
		return
	}
	checkClose(t, name+" forward", y.Data, want.data, o.fwdRtol, o.fwdAtol)
	yData := append([]float32(nil), y.Data...)

	// Backward.
	if anyDiff {
		if !y.RequiresGrad() || y.node == nil {
			t.Errorf("%s: output of inputs that require gradients recorded no node", name)
			return
		}
		rng := rand.New(rand.NewPCG(uint64(len(want.data)), 99))
		r := make([]float64, len(want.data))
		for i := range r {
			r[i] = float64(float32(rng.NormFloat64())) // exactly representable in float32
		}
		refLoss := func(in []arr) float64 {
			out := ref(in)
			var s float64
			for i, v := range out.data {
				s += r[i] * v
			}
			return s
		}
		// Seed the gradients of differentiable inputs, so that a backward
		// pass that overwrites Grad instead of accumulating into it fails.
		seeds := make([][]float32, len(ins))
		for k, x := range ins {
			if x.RequiresGrad() {
				seeds[k] = make([]float32, len(x.Data))
				for i := range seeds[k] {
					seeds[k][i] = float32(rng.IntN(17)-8) / 8
				}
				x.Grad = append([]float32(nil), seeds[k]...)
			}
		}
		Backward(dotLoss(y, r))
		for k, x := range ins {
			what := fmt.Sprintf("%s input %d %v", name, k, x.Shape)
			for i, v := range x.Data {
				if math.Float32bits(v) != math.Float32bits(inputs[k].Data[i]) {
					t.Errorf("%s: modified by the operation (element %d: %v, was %v)", what, i, v, inputs[k].Data[i])
					break
				}
			}
			if !x.RequiresGrad() {
				if x.Grad != nil {
					t.Errorf("%s: constant received a gradient", what)
				}
				continue
			}
			if len(x.Grad) != len(x.Data) {
				t.Errorf("%s: gradient has %d values, want %d", what, len(x.Grad), len(x.Data))
				continue
			}
			in := refIn[k].data
			maxDiff, maxFD, worst, worstG, worstFD := 0.0, 0.0, -1, 0.0, 0.0
			for _, i := range sampleIndices(len(in), o.samples) {
				orig := in[i]
				in[i] = orig + o.step
				lp := refLoss(refIn)
				in[i] = orig - o.step
				lm := refLoss(refIn)
				in[i] = orig
				fd := (lp - lm) / (2 * o.step)
				g := float64(x.Grad[i]) - float64(seeds[k][i])
				maxFD = math.Max(maxFD, math.Abs(fd))
				d := math.Abs(g - fd)
				if math.IsNaN(d) {
					d = math.Inf(1)
				}
				if worst < 0 || d > maxDiff {
					maxDiff, worst, worstG, worstFD = d, i, g, fd
				}
			}
			if !(maxDiff <= o.gradTol*math.Max(maxFD, 1e-6)) {
				t.Errorf("%s: gradient off by %.3g (max |fd| %.3g); worst at %d: engine %v, finite difference %v",
					what, maxDiff, maxFD, worst, worstG, worstFD)
			}
		}
	}

	// A gradient-free pass records nothing and computes the same values: the same bits,
	// or, for operations that choose another algorithm when there is no
	// backward pass (o.noGradMayDiffer), values as close to the reference.
	ins = fresh()
	var y2 *Tensor
	p := GradFree()
	for i, in := range ins {
		if in != nil {
			ins[i] = p.Input(in)
		}
	}
	y2 = engine(ins)
	if y2.node != nil || y2.RequiresGrad() {
		t.Errorf("%s: gradient-free output has a backward node or requires gradients", name)
	}
	checkClose(t, name+" gradient-free forward", y2.Data, want.data, o.fwdRtol, o.fwdAtol)
	same := 0
	for i := range yData {
		if math.Float32bits(y2.Data[i]) == math.Float32bits(yData[i]) {
			same++
		}
	}
	if same != len(yData) && !o.noGradMayDiffer {
		t.Errorf("%s: gradient-free output differs in %d of %d values", name, len(yData)-same, len(yData))
	}
}

// Input generators.

func gcRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

// uniform returns a tensor with entries drawn from U[lo, hi).
func uniform(rng *rand.Rand, lo, hi float64, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(lo + (hi-lo)*rng.Float64())
	}
	return t
}

// normal returns a tensor with N(mean, std^2) entries.
func normal(rng *rand.Rand, mean, std float64, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(mean + std*rng.NormFloat64())
	}
	return t
}

// awayFromZero returns entries with |v| in [0.1, 2] and random sign.
func awayFromZero(rng *rand.Rand, shape ...int) *Tensor {
	t := uniform(rng, 0.1, 2, shape...)
	for i := range t.Data {
		if rng.IntN(2) == 0 {
			t.Data[i] = -t.Data[i]
		}
	}
	return t
}

// binaryMask returns a 0/1 tensor with both values present.
func binaryMask(rng *rand.Rand, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float32(rng.IntN(2))
	}
	t.Data[0], t.Data[len(t.Data)-1] = 0, 1
	return t
}

func param(t *Tensor) *Tensor { return t.SetRequiresGrad(true) }

// Reference helpers.

func refMap(a arr, f func(float64) float64) arr {
	y := newArr(a.shape...)
	for i, v := range a.data {
		y.data[i] = f(v)
	}
	return y
}

func refZip(a, b arr, f func(x, y float64) float64) arr {
	y := newArr(a.shape...)
	for i := range a.data {
		y.data[i] = f(a.data[i], b.data[i])
	}
	return y
}

// f32 is the float64 value of the float32 rounding of v, for constants the
// engine takes as float32.
func f32(v float64) float64 { return float64(float32(v)) }

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
