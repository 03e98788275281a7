package nn

import (
	"math"
	"testing"

	"github.com/flowood/flowood/tensor"
)

// weightNorm64 is WeightNorm in float64: w[r, o] = g[o] v[r, o]/‖v[:, o]‖
// for v laid out as rows of c output channels.
func weightNorm64(v, g []float64, c int) []float64 {
	norm := make([]float64, c)
	for i, x := range v {
		norm[i%c] += x * x
	}
	w := make([]float64, len(v))
	for i, x := range v {
		w[i] = g[i%c] * x / math.Sqrt(norm[i%c])
	}
	return w
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// relErr is |got - want| / (tol scale), the scale being 1 + |want|.
func relErr(got float32, want float64) float64 {
	return math.Abs(float64(got)-want) / (1 + math.Abs(want))
}

// TestWeightNormForward compares WeightNorm with a float64 computation,
// for kernels with one and several output channels.
func TestWeightNormForward(t *testing.T) {
	for _, shape := range [][]int{{3, 3, 5, 7}, {1, 1, 4, 1}, {2, 6}} {
		rng := tensor.NewRNG(1)
		v := tensor.Randn(rng, shape...)
		c := shape[len(shape)-1]
		g := tensor.New(c)
		rng.Uniform(g.Data, -2, 2)
		w := WeightNorm(v, g)
		want := weightNorm64(to64(v.Data), to64(g.Data), c)
		var worst float64
		for i := range want {
			worst = max(worst, relErr(w.Data[i], want[i]))
		}
		if worst > 1e-6 {
			t.Errorf("%v: WeightNorm differs from float64 by %.3g (relative)", shape, worst)
		}
	}
}

// TestWeightNormGradient checks the gradients of v and g against central
// finite differences of the float64 computation, for L = Σ r ⊙ w with
// random r, including a zero gain (w = 0, but g still gets a gradient
// and v none).
func TestWeightNormGradient(t *testing.T) {
	const c = 5
	for _, zeroGain := range []bool{false, true} {
		rng := tensor.NewRNG(2)
		v := tensor.Randn(rng, 3, 3, 4, c).SetRequiresGrad(true)
		g := tensor.New(c).SetRequiresGrad(true)
		if !zeroGain {
			rng.Uniform(g.Data, 0.5, 2)
		}
		r := tensor.Randn(rng, v.Shape...)
		tensor.Backward(tensor.Sum(tensor.Mul(WeightNorm(v, g), r)))

		v64, g64, r64 := to64(v.Data), to64(g.Data), to64(r.Data)
		loss := func() float64 {
			var s float64
			for i, w := range weightNorm64(v64, g64, c) {
				s += w * r64[i]
			}
			return s
		}
		const h = 1e-6
		fd := func(x []float64, i int) float64 {
			x0 := x[i]
			x[i] = x0 + h
			up := loss()
			x[i] = x0 - h
			down := loss()
			x[i] = x0
			return (up - down) / (2 * h)
		}
		var worst float64
		for i := range v64 {
			worst = max(worst, relErr(v.Grad[i], fd(v64, i)))
		}
		for i := range g64 {
			worst = max(worst, relErr(g.Grad[i], fd(g64, i)))
		}
		if worst > 1e-5 {
			t.Errorf("zero gain %v: gradients differ from finite differences by %.3g (relative)", zeroGain, worst)
		}
		if zeroGain {
			for i, d := range v.Grad {
				if d != 0 {
					t.Fatalf("zero gain: v gradient %d = %v, want 0", i, d)
				}
			}
		}
	}
}

// TestWNConv2D checks a weight-normalised convolution end to end: it
// starts with the kernel NewConv2D draws from the same generator, and
// the gradients of its gain and direction are those of the kernel of a
// plain convolution mapped through weight norm's Jacobian (in float64).
func TestWNConv2D(t *testing.T) {
	const k, cin, cout = 3, 3, 4
	wn := NewWNConv2D(tensor.NewRNG(7), k, cin, cout, true, false, false)
	plain := NewConv2D(tensor.NewRNG(7), k, cin, cout, true, false)
	kern := wn.Kernel(nil)
	for i, w := range plain.W.Data {
		if relErr(kern.Data[i], float64(w)) > 1e-6 {
			t.Fatalf("initial kernel %d = %v, NewConv2D drew %v", i, kern.Data[i], w)
		}
	}
	copy(plain.W.Data, kern.Data) // the same kernel exactly
	if names := Tensors(wn); names[0].Name != "weight_g" || names[1].Name != "weight_v" || names[2].Name != "bias" {
		t.Fatalf("names %q %q %q, want weight_g weight_v bias", names[0].Name, names[1].Name, names[2].Name)
	}

	x := tensor.Randn(tensor.NewRNG(8), 2, 5, 6, cin)
	r := tensor.Randn(tensor.NewRNG(9), 2, 5, 6, cout)
	tensor.Backward(tensor.Sum(tensor.Mul(wn.Forward(x), r)))
	tensor.Backward(tensor.Sum(tensor.Mul(plain.Forward(x), r)))

	// ∂L/∂g = gK·v̂ and ∂L/∂v = g/‖v‖ (gK - v̂ (v̂·gK)) per output channel.
	v, gain, gk := to64(wn.W.Data), to64(wn.G.Data), to64(plain.W.Grad)
	norm, dot := make([]float64, cout), make([]float64, cout)
	for i, x := range v {
		norm[i%cout] += x * x
	}
	for o := range norm {
		norm[o] = math.Sqrt(norm[o])
	}
	for i, x := range v {
		dot[i%cout] += gk[i] * x / norm[i%cout]
	}
	var worst float64
	for o := 0; o < cout; o++ {
		worst = max(worst, relErr(wn.G.Grad[o], dot[o]))
	}
	for i, x := range v {
		o := i % cout
		want := gain[o] / norm[o] * (gk[i] - x/norm[o]*dot[o])
		worst = max(worst, relErr(wn.W.Grad[i], want))
	}
	for i, b := range plain.B.Grad {
		worst = max(worst, relErr(wn.B.Grad[i], float64(b)))
	}
	if worst > 1e-5 {
		t.Errorf("weight-normalised gradients differ from the plain kernel's mapped through weight norm by %.3g", worst)
	}
}

// TestWNConv2DPasses checks the kernel of a weight-normalised convolution
// in passes: recorded, it passes gradients to the gain and direction; in
// a gradient-free pass that caches weights it is computed once, records
// nothing, and the convolution gives the recorded values; changing the
// parameters is seen by a new pass only.
func TestWNConv2DPasses(t *testing.T) {
	rng := tensor.NewRNG(8)
	c := NewWNConv2D(rng, 3, 4, 16, true, false, false)
	for i := range c.G.Data {
		c.G.Data[i] = 0.5 + 0.1*float32(i)
	}
	x := tensor.New(2, 6, 6, 4)
	rng.Normal(x.Data, 0, 1)
	want := c.Forward(x)
	tensor.Backward(tensor.Sum(want))
	if c.G.Grad == nil || c.W.Grad == nil {
		t.Fatal("recorded kernel passed no gradient to the gain or direction")
	}
	p := tensor.NewPass(tensor.PassOptions{CacheWeights: true})
	k1, k2 := c.Kernel(p.Input(x)), c.Kernel(p.Sub().Input(x))
	if k1 != k2 || k1.RequiresGrad() {
		t.Errorf("cached kernel: computed twice (%v) or recorded (%v)", k1 != k2, k1.RequiresGrad())
	}
	got := c.Forward(p.Input(x))
	for i := range want.Data {
		if relErr(got.Data[i], float64(want.Data[i])) > 1e-5 {
			t.Fatalf("output %d: %v in a caching pass, %v recorded", i, got.Data[i], want.Data[i])
		}
	}
	before := append([]float32(nil), got.Data...)
	c.G.Data[0] *= 2
	if k := c.Kernel(p.Input(x)); k != k1 {
		t.Error("a pass's kernel changed within the pass")
	}
	p.Close()
	q := tensor.GradFree()
	defer q.Close()
	after := c.Forward(q.Input(x))
	if after.Data[0] == before[0] {
		t.Error("a new pass did not see the changed gain")
	}
}
