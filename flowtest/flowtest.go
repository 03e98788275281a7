// Package flowtest holds the contract every bijector and model must pass:
// invertibility, log-det consistency, log-det against a brute-force
// Jacobian, parameter gradients against finite differences, finite
// outputs, the same values recorded and gradient-free (also inside a
// chain whose reshaping steps share buffers), and the same bits from
// goroutines evaluating at once. Tests call CheckBijector with small
// inputs; bijectors written outside flowood can call it too.
package flowtest

import (
	"math"
	"sync"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Options tunes CheckBijector. The zero value checks everything.
type Options struct {
	// SkipJacobian skips the brute-force Jacobian (for inputs too large).
	SkipJacobian bool
	// SkipGrads skips the finite-difference gradient check.
	SkipGrads bool
	// GradSamples is the number of parameter entries checked by finite
	// differences per parameter tensor; zero means 3.
	GradSamples int
	// Step is the finite-difference step h (differences at h and 2h are
	// compared); zero means 1e-3. Smooth models whose loss is large (whole
	// flows, where float32 rounding of the loss divided by h swamps small
	// gradients) are checked better with a larger step.
	Step float64
}

// Perturb adds N(0, std^2) noise to every trainable tensor of m, so that
// zero-initialised layers (which make couplings the identity) are checked
// in a generic state.
func Perturb(m nn.Module, rng *tensor.RNG, std float64) {
	for _, p := range nn.Params(m) {
		for i := range p.Data {
			p.Data[i] += float32(std * rng.NormFloat64())
		}
	}
}

// CheckBijector runs the contract on b at input x (batch first). b must be
// deterministic per example (batch norms in evaluation mode).
func CheckBijector(t *testing.T, b flow.Bijector, x *tensor.Tensor, opt Options) {
	t.Helper()
	p := tensor.GradFree()
	defer p.Close()
	z, ld := b.Forward(p.Input(x))
	xr, ldInv := b.Inverse(z)
	if z.RequiresGrad() || ld.RequiresGrad() {
		t.Errorf("gradient-free Forward recorded a node")
	}
	if !z.AllFinite() || !ld.AllFinite() || !xr.AllFinite() || !ldInv.AllFinite() {
		t.Fatalf("non-finite outputs: z %v logDet %v", z, ld)
	}
	if len(ld.Shape) != 1 || ld.Shape[0] != x.Shape[0] {
		t.Fatalf("logDet shape %v, want [%d]", ld.Shape, x.Shape[0])
	}
	if len(xr.Data) != len(x.Data) {
		t.Fatalf("Inverse(Forward(x)) has %d values, x has %d", len(xr.Data), len(x.Data))
	}
	if e := maxAbsDiff(xr.Data, x.Data); e > 1e-4 {
		t.Errorf("Inverse(Forward(x)) differs from x by %g (max abs), want < 1e-4", e)
	}
	for i := range ld.Data {
		if s := float64(ld.Data[i]) + float64(ldInv.Data[i]); math.Abs(s) > 1e-3*math.Max(1, math.Abs(float64(ld.Data[i]))) {
			t.Errorf("example %d: forward logDet %g + inverse logDet %g = %g, want 0", i, ld.Data[i], ldInv.Data[i], s)
		}
	}
	// The recorded pass (which training differentiates) computes what the
	// gradient-free one (evaluation's fused and folded operations) does.
	zr, ldr := b.Forward(x.Clone().SetRequiresGrad(true))
	if e := maxAbsDiff(zr.Data, z.Data); !(e <= 1e-5*math.Max(1, maxAbs(z.Data))) {
		t.Errorf("Forward recorded and gradient-free differ by %g (max abs)", e)
	}
	if e := maxAbsDiff(ldr.Data, ld.Data); !(e <= 1e-5*math.Max(1, maxAbs(ld.Data))) {
		t.Errorf("Forward log-det recorded and gradient-free differ by %g (max abs)", e)
	}
	checkChained(t, b, x)
	checkConcurrent(t, b, x, z, ld)
	if !opt.SkipJacobian {
		checkJacobian(t, b, x, ld)
	}
	if !opt.SkipGrads {
		checkParamGrads(t, b, x, opt)
	}
}

// checkChained runs b inside a chain that flattens its input and output
// (reshaping steps, whose outputs share their inputs' buffers, after
// which the chain declares the inputs done) and checks that the chain
// gives b's recorded values gradient-free, so that no buffer a view
// still uses was recycled and overwritten. The examples of x are repeated
// to a batch whose tensors are large enough to be recycled (the engine
// pools buffers of 1024 values and more).
func checkChained(t *testing.T, b flow.Bijector, x0 *tensor.Tensor) {
	t.Helper()
	n0, d := x0.Shape[0], len(x0.Data)/x0.Shape[0]
	n := n0 * (4096/(n0*d) + 1)
	x := tensor.New(append([]int{n}, x0.Shape[1:]...)...)
	for e := 0; e < n; e++ {
		copy(x.Data[e*d:(e+1)*d], x0.Data[(e%n0)*d:])
	}
	zr, ldr := b.Forward(x.Clone().SetRequiresGrad(true))
	in := x.Shape[1:]
	out := zr.Shape[1:]
	flat := []int{tensor.Numel(in)}
	c := flow.Chain{
		bijector.Reshape{In: in, Out: flat}, bijector.Reshape{In: flat, Out: in},
		b,
		bijector.Reshape{In: out, Out: []int{tensor.Numel(out)}},
	}
	for round := 0; round < 2; round++ { // the second reuses recycled buffers
		p := tensor.GradFree()
		z, ld := c.Forward(p.Input(x))
		// Operations after the chain take buffers from the pool: a
		// recycled one that z still shared would be overwritten here.
		junk := tensor.Scale(tensor.AddScalar(p.Input(x), 1), 3)
		tensor.Done(junk)
		if e := maxAbsDiff(z.Data, zr.Data); !(e <= 1e-5*math.Max(1, maxAbs(zr.Data))) {
			t.Errorf("Chain with reshaping steps: gradient-free output differs from recorded by %g (max abs)", e)
		}
		if e := maxAbsDiff(ld.Data, ldr.Data); !(e <= 1e-5*math.Max(1, maxAbs(ldr.Data))) {
			t.Errorf("Chain with reshaping steps: gradient-free log-det differs from recorded by %g (max abs)", e)
		}
		p.Close()
	}
	// Recorded, the chain computes what b does.
	z, ld := c.Forward(x.Clone().SetRequiresGrad(true))
	if e := maxAbsDiff(z.Data, zr.Data); !(e <= 1e-6*math.Max(1, maxAbs(zr.Data))) {
		t.Errorf("Chain with reshaping steps: recorded output differs from b's by %g", e)
	}
	if e := maxAbsDiff(ld.Data, ldr.Data); !(e <= 1e-6*math.Max(1, maxAbs(ldr.Data))) {
		t.Errorf("Chain with reshaping steps: recorded log-det differs from b's by %g", e)
	}
}

// checkConcurrent evaluates b gradient-free from several goroutines at
// once, each in its own single-threaded pass, and checks that every one
// gets the bits of a serial single-threaded evaluation, and values as
// close as rounding allows to z and ld. Run under -race it also checks
// that b's Forward writes no shared state.
func checkConcurrent(t *testing.T, b flow.Bijector, x, z, ld *tensor.Tensor) {
	t.Helper()
	eval := func() ([]float32, []float32) {
		p := tensor.NewPass(tensor.PassOptions{Workers: 1})
		defer p.Close()
		zz, ll := b.Forward(p.Input(x))
		return append([]float32(nil), zz.Data...), append([]float32(nil), ll.Data...)
	}
	wantZ, wantLD := eval()
	if e := maxAbsDiff(wantZ, z.Data); !(e <= 1e-5*math.Max(1, maxAbs(z.Data))) {
		t.Errorf("single-threaded Forward differs from the default pass by %g", e)
	}
	const goroutines = 4
	var wg sync.WaitGroup
	bad := make([]string, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 3; rep++ {
				gz, gl := eval()
				if !SameBits(gz, wantZ) || !SameBits(gl, wantLD) {
					bad[g] = "differs"
				}
			}
		}()
	}
	wg.Wait()
	for g, msg := range bad {
		if msg != "" {
			t.Errorf("goroutine %d: concurrent Forward %s from serial Forward", g, msg)
		}
	}
	if e := maxAbsDiff(wantLD, ld.Data); !(e <= 1e-5*math.Max(1, maxAbs(ld.Data))) {
		t.Errorf("single-threaded Forward's log-det differs from the default pass by %g", e)
	}
}

// SameBits reports whether a and b hold the same float32 bit patterns.
func SameBits(a, b []float32) bool {
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

// checkJacobian compares logDet with log|det J| of the Jacobian of the
// flattened Forward, built row by row with the engine's gradients.
func checkJacobian(t *testing.T, b flow.Bijector, x, ld *tensor.Tensor) {
	t.Helper()
	n := x.Shape[0]
	d := len(x.Data) / n
	jac := make([]*mat.Dense, n)
	for e := range jac {
		jac[e] = mat.NewDense(d, d, nil)
	}
	for j := 0; j < d; j++ {
		xi := x.Clone().SetRequiresGrad(true)
		z, _ := b.Forward(xi)
		if len(z.Data) != len(x.Data) {
			t.Fatalf("Forward changes the number of values: %v -> %v", x.Shape, z.Shape)
		}
		sel := tensor.New(z.Shape...)
		for e := 0; e < n; e++ {
			sel.Data[e*d+j] = 1
		}
		tensor.Backward(tensor.Sum(tensor.Mul(z, sel)))
		for e := 0; e < n; e++ {
			for k := 0; k < d; k++ {
				jac[e].Set(j, k, float64(xi.Grad[e*d+k]))
			}
		}
	}
	for e := 0; e < n; e++ {
		logDet, sign := mat.LogDet(jac[e])
		if sign == 0 {
			t.Errorf("example %d: singular Jacobian", e)
			continue
		}
		if diff := math.Abs(logDet - float64(ld.Data[e])); diff > 2e-3*math.Max(1, math.Abs(logDet)) {
			t.Errorf("example %d: logDet %g, brute-force log|det J| %g", e, ld.Data[e], logDet)
		}
	}
}

// checkParamGrads compares the gradient of L = sum(r⊙z) + sum(logDet) with
// central finite differences for a few entries of every parameter.
func checkParamGrads(t *testing.T, b flow.Bijector, x *tensor.Tensor, opt Options) {
	t.Helper()
	samples := opt.GradSamples
	if samples == 0 {
		samples = 3
	}
	rng := tensor.NewRNG(7)
	var r *tensor.Tensor
	loss := func(p *tensor.Pass) (*tensor.Tensor, float64) {
		in := x
		if p != nil {
			in = p.Input(x)
			defer p.Close()
		}
		z, ld := b.Forward(in)
		if r == nil {
			r = tensor.Randn(rng, z.Shape...)
		}
		l := tensor.Add(tensor.Sum(tensor.Mul(z, r)), tensor.Sum(ld))
		var s float64
		for i, v := range z.Data {
			s += float64(v) * float64(r.Data[i])
		}
		for _, v := range ld.Data {
			s += float64(v)
		}
		return l, s
	}
	params := nn.Params(b)
	for _, p := range params {
		p.ZeroGrad()
	}
	l, _ := loss(nil)
	if !l.RequiresGrad() {
		if len(params) > 0 {
			t.Fatalf("loss does not depend on the %d parameters", len(params))
		}
		return
	}
	tensor.Backward(l)
	names := nn.Tensors(b)
	for _, nt := range names {
		if !nt.Trainable {
			continue
		}
		p := nt.T
		if p.Grad == nil {
			t.Errorf("parameter %s got no gradient", nt.Name)
			continue
		}
		grad := append([]float32(nil), p.Grad...)
		// Directional derivative along random unit directions v of the
		// whole tensor: (L(p+hv) - L(p-hv))/2h against grad·v. Spreading
		// the step over every entry keeps ReLU kinks (where the loss is
		// not differentiable) from dominating the difference; a direction
		// whose differences at two step sizes disagree crosses a kink and
		// is replaced by another.
		checked := 0
		for try := 0; checked < samples && try < 10*samples; try++ {
			v := make([]float32, len(p.Data))
			rng.Normal(v, 0, 1)
			var norm, gv float64
			for _, e := range v {
				norm += float64(e) * float64(e)
			}
			norm = math.Sqrt(norm)
			for j := range v {
				v[j] = float32(float64(v[j]) / norm)
				gv += float64(v[j]) * float64(grad[j])
			}
			old := append([]float32(nil), p.Data...)
			central := func(h float64) float64 {
				var lp, lm float64
				for j := range p.Data {
					p.Data[j] = old[j] + float32(h)*v[j]
				}
				_, lp = loss(tensor.GradFree())
				for j := range p.Data {
					p.Data[j] = old[j] - float32(h)*v[j]
				}
				_, lm = loss(tensor.GradFree())
				copy(p.Data, old)
				return (lp - lm) / (2 * h)
			}
			h := opt.Step
			if h == 0 {
				h = 1e-3
			}
			fd, fd2 := central(h), central(2*h)
			tol := 2e-2 * math.Max(1, math.Abs(fd))
			if math.Abs(fd-fd2) > tol/2 {
				continue
			}
			checked++
			if math.Abs(fd-gv) > tol {
				t.Errorf("parameter %s: directional derivative %g by gradient, %g by finite differences", nt.Name, gv, fd)
			}
		}
		if checked == 0 && len(p.Data) > 0 {
			t.Errorf("parameter %s: no differentiable direction found for finite differences", nt.Name)
		}
	}
	for _, p := range params {
		p.ZeroGrad()
	}
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

// maxAbs returns the largest magnitude in a.
func maxAbs(a []float32) float64 {
	var m float64
	for _, v := range a {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}
