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
	"strings"
	"testing"
)

func TestUnaryOps(t *testing.T) {
	rng := gcRNG(1)
	shape := []int{2, 3, 4, 5}
	cases := []struct {
		name string
		x    *Tensor
		eng  func(*Tensor) *Tensor
		ref  func(float64) float64
	}{
		{"Exp", uniform(rng, -3, 3, shape...), Exp, math.Exp},
		{"Log", uniform(rng, 0.2, 4, shape...), Log, math.Log},
		{"Tanh", uniform(rng, -3, 3, shape...), Tanh, math.Tanh},
		{"Relu", awayFromZero(rng, shape...), Relu, func(v float64) float64 { return math.Max(v, 0) }},
		{"Softplus", uniform(rng, -6, 6, shape...), Softplus, func(v float64) float64 { return math.Log1p(math.Exp(v)) }},
		{"Softplus/wide", uniform(rng, -40, 40, 3, 50), Softplus, func(v float64) float64 { return math.Log1p(math.Exp(v)) }},
		{"Sigmoid", uniform(rng, -6, 6, shape...), Sigmoid, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{"Sigmoid/wide", uniform(rng, -40, 40, 3, 50), Sigmoid, func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }},
		{"Scale", normal(rng, 0, 1, shape...), func(x *Tensor) *Tensor { return Scale(x, 0.7) }, func(v float64) float64 { return f32(0.7) * v }},
		{"Scale/negative", normal(rng, 0, 1, 7, 3), func(x *Tensor) *Tensor { return Scale(x, -2.5) }, func(v float64) float64 { return -2.5 * v }},
		{"Neg", normal(rng, 0, 1, 7, 3), Neg, func(v float64) float64 { return -v }},
		{"AddScalar", normal(rng, 0, 1, shape...), func(x *Tensor) *Tensor { return AddScalar(x, -0.3) }, func(v float64) float64 { return v + f32(-0.3) }},
		{"Square", normal(rng, 0, 1.5, shape...), Square, func(v float64) float64 { return v * v }},
		// enough elements for the parallel split (grain 1<<14)
		{"Tanh/large", uniform(rng, -3, 3, 2, 20000), Tanh, math.Tanh},
	}
	for _, c := range cases {
		o := gradOpts{}
		if c.x.Numel() > 10000 {
			o.samples = 16
		}
		checkGradOpts(t, c.name, []*Tensor{param(c.x)},
			func(in []*Tensor) *Tensor { return c.eng(in[0]) },
			func(in []arr) arr { return refMap(in[0], c.ref) }, o)
	}
}

func TestSoftplusSigmoidExtremes(t *testing.T) {
	x := FromData([]float32{-200, -90, -30, 0, 30, 90, 200}, 7)
	sp, sg := Softplus(x), Sigmoid(x)
	for i, v := range x.Data {
		// float32 roundings (Softplus(-200) underflows to 0)
		wantSp := f32(math.Max(float64(v), 0) + math.Log1p(math.Exp(-math.Abs(float64(v)))))
		wantSg := f32(1 / (1 + math.Exp(-float64(v))))
		if d := math.Abs(float64(sp.Data[i]) - wantSp); !(d <= 1e-6*math.Abs(wantSp)) {
			t.Errorf("Softplus(%v) = %v, want %v", v, sp.Data[i], wantSp)
		}
		if d := math.Abs(float64(sg.Data[i]) - wantSg); !(d <= 1e-6*wantSg) {
			t.Errorf("Sigmoid(%v) = %v, want %v", v, sg.Data[i], wantSg)
		}
	}
}

func TestBinaryOps(t *testing.T) {
	rng := gcRNG(2)
	cases := []struct {
		name string
		eng  func(a, b *Tensor) *Tensor
		ref  func(a, b float64) float64
	}{
		{"Add", Add, func(a, b float64) float64 { return a + b }},
		{"Sub", Sub, func(a, b float64) float64 { return a - b }},
		{"Mul", Mul, func(a, b float64) float64 { return a * b }},
	}
	for _, c := range cases {
		for _, which := range []string{"both", "a", "b"} {
			a, b := normal(rng, 0, 1, 2, 3, 4, 5), normal(rng, 0, 1, 2, 3, 4, 5)
			a.SetRequiresGrad(which != "b")
			b.SetRequiresGrad(which != "a")
			checkGrad(t, c.name+"/"+which, []*Tensor{a, b},
				func(in []*Tensor) *Tensor { return c.eng(in[0], in[1]) },
				func(in []arr) arr { return refZip(in[0], in[1], c.ref) })
		}
	}
}

// refPerChannel applies f(x, v[c]) with c the last index.
func refPerChannel(x, v arr, f func(x, v float64) float64) arr {
	c := x.shape[len(x.shape)-1]
	y := newArr(x.shape...)
	for i := range x.data {
		y.data[i] = f(x.data[i], v.data[i%c])
	}
	return y
}

// refPerExample applies f(x, m[j]) with j the index within the example.
func refPerExample(x, m arr, f func(x, m float64) float64) arr {
	d := len(m.data)
	y := newArr(x.shape...)
	for n := 0; n < x.shape[0]; n++ {
		for j := 0; j < d; j++ {
			y.data[n*d+j] = f(x.data[n*d+j], m.data[j])
		}
	}
	return y
}

func TestBroadcastOps(t *testing.T) {
	rng := gcRNG(3)
	add := func(x, v float64) float64 { return x + v }
	mul := func(x, v float64) float64 { return x * v }
	for _, shape := range [][]int{{2, 3, 4, 5}, {6, 3}, {1, 1, 1, 1}, {700, 30}} {
		c := shape[len(shape)-1]
		o := gradOpts{}
		if Numel(shape) > 10000 {
			o.samples = 40
		}
		name := fmt.Sprint(shape)
		checkGradOpts(t, "AddChannel"+name, []*Tensor{param(normal(rng, 0, 1, shape...)), param(normal(rng, 0, 1, c))},
			func(in []*Tensor) *Tensor { return AddChannel(in[0], in[1]) },
			func(in []arr) arr { return refPerChannel(in[0], in[1], add) }, o)
		checkGradOpts(t, "MulChannel"+name, []*Tensor{param(normal(rng, 0, 1, shape...)), param(normal(rng, 0, 1, c))},
			func(in []*Tensor) *Tensor { return MulChannel(in[0], in[1]) },
			func(in []arr) arr { return refPerChannel(in[0], in[1], mul) }, o)
		checkGradOpts(t, "MulChannel/const-scale"+name, []*Tensor{param(normal(rng, 0, 1, shape...)), normal(rng, 0, 1, c)},
			func(in []*Tensor) *Tensor { return MulChannel(in[0], in[1]) },
			func(in []arr) arr { return refPerChannel(in[0], in[1], mul) }, o)
		checkGradOpts(t, "AddChannel/const-x"+name, []*Tensor{normal(rng, 0, 1, shape...), param(normal(rng, 0, 1, c))},
			func(in []*Tensor) *Tensor { return AddChannel(in[0], in[1]) },
			func(in []arr) arr { return refPerChannel(in[0], in[1], add) }, o)
	}
	for _, shape := range [][]int{{3, 4, 5, 2}, {4, 7}, {1, 3}} {
		name := fmt.Sprint(shape)
		checkGrad(t, "MulExample"+name, []*Tensor{param(normal(rng, 0, 1, shape...)), param(normal(rng, 0, 1, shape[1:]...))},
			func(in []*Tensor) *Tensor { return MulExample(in[0], in[1]) },
			func(in []arr) arr { return refPerExample(in[0], in[1], mul) })
		checkGrad(t, "MulExample/mask"+name, []*Tensor{param(normal(rng, 0, 1, shape...)), binaryMask(rng, shape[1:]...)},
			func(in []*Tensor) *Tensor { return MulExample(in[0], in[1]) },
			func(in []arr) arr { return refPerExample(in[0], in[1], mul) })
		for _, which := range []string{"both", "a", "b"} {
			a, b := normal(rng, 0, 1, shape...), normal(rng, 0, 1, shape...)
			a.SetRequiresGrad(which != "b")
			b.SetRequiresGrad(which != "a")
			checkGrad(t, "Where/"+which+name, []*Tensor{binaryMask(rng, shape[1:]...), a, b},
				func(in []*Tensor) *Tensor { return Where(in[0], in[1], in[2]) },
				func(in []arr) arr {
					mask, a, b := in[0], in[1], in[2]
					d := len(mask.data)
					y := newArr(a.shape...)
					for i := range y.data {
						if mask.data[i%d] == 1 {
							y.data[i] = a.data[i]
						} else {
							y.data[i] = b.data[i]
						}
					}
					return y
				})
		}
	}
}

func TestReductions(t *testing.T) {
	rng := gcRNG(4)
	perExample := func(f func(float64) float64, c float64) func([]arr) arr {
		return func(in []arr) arr {
			x := in[0]
			n := x.shape[0]
			d := len(x.data) / n
			y := newArr(n)
			for e := 0; e < n; e++ {
				for j := 0; j < d; j++ {
					y.data[e] += f(x.data[e*d+j]) + c
				}
			}
			return y
		}
	}
	total := func(in []arr) float64 {
		s := 0.0
		for _, v := range in[0].data {
			s += v
		}
		return s
	}
	ident := func(v float64) float64 { return v }
	logPDF := func(v float64) float64 { return -v * v / 2 }
	halfLn2Pi := -math.Log(2*math.Pi) / 2
	for _, shape := range [][]int{{3, 4, 5, 2}, {5, 7}, {1, 6}, {4, 1}} {
		name := fmt.Sprint(shape)
		checkGrad(t, "SumPerExample"+name, []*Tensor{param(normal(rng, 0, 1, shape...))},
			func(in []*Tensor) *Tensor { return SumPerExample(in[0]) }, perExample(ident, 0))
		checkGrad(t, "StdNormalLogProb"+name, []*Tensor{param(normal(rng, 0, 1.3, shape...))},
			func(in []*Tensor) *Tensor { return StdNormalLogProb(in[0]) }, perExample(logPDF, halfLn2Pi))
		checkGrad(t, "Sum"+name, []*Tensor{param(normal(rng, 0, 1, shape...))},
			func(in []*Tensor) *Tensor { return Sum(in[0]) },
			func(in []arr) arr { y := newArr(1); y.data[0] = total(in); return y })
		checkGrad(t, "Mean"+name, []*Tensor{param(normal(rng, 0.5, 1, shape...))},
			func(in []*Tensor) *Tensor { return Mean(in[0]) },
			func(in []arr) arr { y := newArr(1); y.data[0] = total(in) / float64(len(in[0].data)); return y })
	}
	// Float64 accumulation: a float32 running sum of 1 + 2^-24 repeated
	// stalls at 2^24; in float64 it does not.
	big := Full(1, 1, 1<<24+8)
	if got := SumPerExample(big).Data[0]; got != 1<<24+8 {
		t.Errorf("SumPerExample does not accumulate in float64: %v", got)
	}
}

func TestShapeOps(t *testing.T) {
	rng := gcRNG(5)
	ident := func(shape ...int) func([]arr) arr {
		return func(in []arr) arr {
			y := newArr(shape...)
			copy(y.data, in[0].data)
			return y
		}
	}
	checkGrad(t, "Reshape", []*Tensor{param(normal(rng, 0, 1, 2, 3, 4, 5))},
		func(in []*Tensor) *Tensor { return Reshape(in[0], 6, 20) }, ident(6, 20))
	checkGrad(t, "Reshape/infer", []*Tensor{param(normal(rng, 0, 1, 2, 3, 4, 5))},
		func(in []*Tensor) *Tensor { return Reshape(in[0], 6, -1, 5) }, ident(6, 4, 5))
	checkGrad(t, "Reshape/infer-first", []*Tensor{param(normal(rng, 0, 1, 2, 3, 4, 5))},
		func(in []*Tensor) *Tensor { return Reshape(in[0], -1, 60) }, ident(2, 60))

	// refSlice returns x[..., lo:hi].
	refSlice := func(x arr, lo, hi int) arr {
		c := x.shape[len(x.shape)-1]
		shape := append(append([]int(nil), x.shape[:len(x.shape)-1]...), hi-lo)
		y := newArr(shape...)
		rows := len(x.data) / c
		for r := 0; r < rows; r++ {
			for j := lo; j < hi; j++ {
				y.data[r*(hi-lo)+j-lo] = x.data[r*c+j]
			}
		}
		return y
	}
	for _, s := range []struct{ lo, hi int }{{2, 5}, {0, 7}, {0, 1}, {6, 7}, {3, 3}} {
		checkGrad(t, fmt.Sprintf("Slice[%d:%d]", s.lo, s.hi), []*Tensor{param(normal(rng, 0, 1, 2, 3, 7))},
			func(in []*Tensor) *Tensor { return Slice(in[0], s.lo, s.hi) },
			func(in []arr) arr { return refSlice(in[0], s.lo, s.hi) })
	}
	for k := 0; k <= 5; k++ {
		checkGrad(t, fmt.Sprintf("Split(%d)/first", k), []*Tensor{param(normal(rng, 0, 1, 3, 2, 5))},
			func(in []*Tensor) *Tensor { a, _ := Split(in[0], k); return a },
			func(in []arr) arr { return refSlice(in[0], 0, k) })
		checkGrad(t, fmt.Sprintf("Split(%d)/second", k), []*Tensor{param(normal(rng, 0, 1, 3, 2, 5))},
			func(in []*Tensor) *Tensor { _, b := Split(in[0], k); return b },
			func(in []arr) arr { return refSlice(in[0], k, 5) })
	}
	// Both halves of a split in one graph.
	checkGrad(t, "Split/both", []*Tensor{param(normal(rng, 0, 1, 3, 2, 5))},
		func(in []*Tensor) *Tensor { a, b := Split(in[0], 2); return Concat(Exp(b), a) },
		func(in []arr) arr {
			x := in[0]
			y := newArr(3, 2, 5)
			for r := 0; r < 6; r++ {
				for j := 0; j < 3; j++ {
					y.data[r*5+j] = math.Exp(x.data[r*5+2+j])
				}
				for j := 0; j < 2; j++ {
					y.data[r*5+3+j] = x.data[r*5+j]
				}
			}
			return y
		})

	refConcat := func(in []arr) arr {
		lead := in[0].shape[:len(in[0].shape)-1]
		total := 0
		for _, x := range in {
			total += x.shape[len(x.shape)-1]
		}
		y := newArr(append(append([]int(nil), lead...), total)...)
		rows := len(y.data) / total
		for r := 0; r < rows; r++ {
			off := 0
			for _, x := range in {
				w := x.shape[len(x.shape)-1]
				for j := 0; j < w; j++ {
					y.data[r*total+off+j] = x.data[r*w+j]
				}
				off += w
			}
		}
		return y
	}
	checkGrad(t, "Concat/3", []*Tensor{param(normal(rng, 0, 1, 2, 3, 2)), param(normal(rng, 0, 1, 2, 3, 3)), param(normal(rng, 0, 1, 2, 3, 1))},
		func(in []*Tensor) *Tensor { return Concat(in...) }, refConcat)
	checkGrad(t, "Concat/const-middle", []*Tensor{param(normal(rng, 0, 1, 4, 2)), normal(rng, 0, 1, 4, 3), param(normal(rng, 0, 1, 4, 1))},
		func(in []*Tensor) *Tensor { return Concat(in...) }, refConcat)
	if y := Concat(normal(rng, 0, 1, 3, 2), New(3, 0)); !SameShape(y.Shape, []int{3, 2}) {
		t.Errorf("Concat with a zero-width input: shape %v, want [3 2]", y.Shape)
	}
	checkGrad(t, "Concat/4+2+1", []*Tensor{param(normal(rng, 0, 1, 3, 5, 4)), param(normal(rng, 0, 1, 3, 5, 2)), param(normal(rng, 0, 1, 3, 5, 1))},
		func(in []*Tensor) *Tensor { return Concat(in...) }, refConcat)
	checkGrad(t, "Concat/1", []*Tensor{param(normal(rng, 0, 1, 2, 2, 2, 3))},
		func(in []*Tensor) *Tensor { return Concat(in...) }, refConcat)
	checkGradOpts(t, "Concat/large", []*Tensor{param(normal(rng, 0, 1, 2000, 3)), param(normal(rng, 0, 1, 2000, 7))},
		func(in []*Tensor) *Tensor { return Concat(in...) }, refConcat, gradOpts{samples: 50})
}

// refSqueeze follows Squeeze2x2's documentation: input (n, h, w, c) of
// [N, H, W, C] goes to (n, h/2, w/2, 4c + 2(h mod 2) + (w mod 2)) of
// [N, H/2, W/2, 4C].
func refSqueeze(x arr) arr {
	N, H, W, C := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	y := newArr(N, H/2, W/2, 4*C)
	for n := 0; n < N; n++ {
		for h := 0; h < H; h++ {
			for w := 0; w < W; w++ {
				for c := 0; c < C; c++ {
					dst := ((n*(H/2)+h/2)*(W/2)+w/2)*(4*C) + 4*c + 2*(h%2) + w%2
					y.data[dst] = x.data[((n*H+h)*W+w)*C+c]
				}
			}
		}
	}
	return y
}

// refUnsqueeze inverts refSqueeze: output (n, h, w, c) of [N, 2H, 2W, C]
// comes from (n, h/2, w/2, 4c + 2(h mod 2) + (w mod 2)) of [N, H, W, 4C].
func refUnsqueeze(x arr) arr {
	N, H, W, C4 := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	C := C4 / 4
	y := newArr(N, 2*H, 2*W, C)
	for n := 0; n < N; n++ {
		for h := 0; h < 2*H; h++ {
			for w := 0; w < 2*W; w++ {
				for c := 0; c < C; c++ {
					src := ((n*H+h/2)*W+w/2)*C4 + 4*c + 2*(h%2) + w%2
					y.data[((n*2*H+h)*2*W+w)*C+c] = x.data[src]
				}
			}
		}
	}
	return y
}

func TestSqueeze(t *testing.T) {
	rng := gcRNG(6)
	for _, s := range [][]int{{2, 4, 6, 3}, {1, 2, 2, 1}, {3, 8, 2, 2}} {
		name := fmt.Sprint(s)
		checkGrad(t, "Squeeze2x2"+name, []*Tensor{param(normal(rng, 0, 1, s...))},
			func(in []*Tensor) *Tensor { return Squeeze2x2(in[0]) },
			func(in []arr) arr { return refSqueeze(in[0]) })
		u := []int{s[0], s[1] / 2, s[2] / 2, 4 * s[3]}
		checkGrad(t, "Unsqueeze2x2"+fmt.Sprint(u), []*Tensor{param(normal(rng, 0, 1, u...))},
			func(in []*Tensor) *Tensor { return Unsqueeze2x2(in[0]) },
			func(in []arr) arr { return refUnsqueeze(in[0]) })

		// Exact round trips, both ways.
		x := normal(rng, 0, 1, s...)
		if got := Unsqueeze2x2(Squeeze2x2(x)); !SameShape(got.Shape, x.Shape) || !bitsEqual(got.Data, x.Data) {
			t.Errorf("Unsqueeze2x2(Squeeze2x2(x)) != x for shape %v", s)
		}
		z := normal(rng, 0, 1, u...)
		if got := Squeeze2x2(Unsqueeze2x2(z)); !SameShape(got.Shape, z.Shape) || !bitsEqual(got.Data, z.Data) {
			t.Errorf("Squeeze2x2(Unsqueeze2x2(z)) != z for shape %v", u)
		}
	}
	// A hand-computed case: one 2x2 image with 2 channels.
	x := FromData([]float32{
		0, 1, // (0,0) c0 c1
		2, 3, // (0,1)
		4, 5, // (1,0)
		6, 7, // (1,1)
	}, 1, 2, 2, 2)
	want := []float32{0, 2, 4, 6, 1, 3, 5, 7}
	if got := Squeeze2x2(x); !bitsEqual(got.Data, want) {
		t.Errorf("Squeeze2x2 of a 2x2x2 image = %v, want %v", got.Data, want)
	}
}

// TestGradAccumulation covers tensors used more than once in a graph.
func TestGradAccumulation(t *testing.T) {
	rng := gcRNG(13)
	type tc struct {
		name string
		eng  func([]*Tensor) *Tensor
		ref  func([]arr) arr
	}
	var cases []tc
	add := func(name string, e func([]*Tensor) *Tensor, r func([]arr) arr) {
		cases = append(cases, tc{name, e, r})
	}
	// add1 adds a case whose reference is elementwise in x.
	add1 := func(name string, e func([]*Tensor) *Tensor, r func(x float64) float64) {
		add(name, e, func(in []arr) arr { return refMap(in[0], r) })
	}
	add1("Add(x, x)", func(in []*Tensor) *Tensor { return Add(in[0], in[0]) }, func(x float64) float64 { return 2 * x })
	add1("Sub(x, x) + x/2", func(in []*Tensor) *Tensor { return Add(Sub(in[0], in[0]), Scale(in[0], 0.5)) }, func(x float64) float64 { return f32(0.5) * x })
	add1("Mul(x, x)", func(in []*Tensor) *Tensor { return Mul(in[0], in[0]) }, func(x float64) float64 { return x * x })
	add1("Mul(x, Exp(x))", func(in []*Tensor) *Tensor { return Mul(in[0], Exp(in[0])) }, func(x float64) float64 { return x * math.Exp(x) })
	add1("diamond", func(in []*Tensor) *Tensor {
		y := Tanh(in[0])
		return Add(Mul(y, Sigmoid(y)), Square(y))
	}, func(x float64) float64 {
		y := math.Tanh(x)
		return y/(1+math.Exp(-y)) + y*y
	})
	add("Where(m, x, Exp(x))", func(in []*Tensor) *Tensor { return Where(in[1], in[0], Exp(in[0])) },
		func(in []arr) arr {
			x, mask := in[0], in[1]
			d := len(mask.data)
			y := newArr(x.shape...)
			for i, v := range x.data {
				if mask.data[i%d] == 1 {
					y.data[i] = v
				} else {
					y.data[i] = math.Exp(v)
				}
			}
			return y
		})
	add("Concat(x, x)", func(in []*Tensor) *Tensor { return Concat(in[0], Scale(in[0], 2), in[0]) },
		func(in []arr) arr {
			x := in[0]
			c := x.shape[len(x.shape)-1]
			rows := len(x.data) / c
			y := newArr(append(append([]int(nil), x.shape[:len(x.shape)-1]...), 3*c)...)
			for r := 0; r < rows; r++ {
				for j := 0; j < c; j++ {
					v := x.data[r*c+j]
					y.data[r*3*c+j], y.data[r*3*c+c+j], y.data[r*3*c+2*c+j] = v, f32(2)*v, v
				}
			}
			return y
		})
	add1("Reshape and Squeeze of x", func(in []*Tensor) *Tensor {
		x := in[0]
		return Add(Unsqueeze2x2(Squeeze2x2(x)), Reshape(Reshape(x, -1), x.Shape...))
	}, func(x float64) float64 { return 2 * x })
	for _, c := range cases {
		checkGrad(t, c.name, []*Tensor{param(normal(rng, 0, 1, 2, 4, 2, 3)), binaryMask(rng, 4, 2, 3)}, c.eng, c.ref)
	}

	// A parameter used as both bias and scale, and a square matrix used on
	// both sides of a product.
	checkGrad(t, "MulChannel(AddChannel(x, b), b)", []*Tensor{param(normal(rng, 0, 1, 3, 4, 5)), param(normal(rng, 0, 1, 5))},
		func(in []*Tensor) *Tensor { return MulChannel(AddChannel(in[0], in[1]), in[1]) },
		func(in []arr) arr {
			return refPerChannel(in[0], in[1], func(x, b float64) float64 { return (x + b) * b })
		})
	checkGradOpts(t, "MatMul(w, w)", []*Tensor{param(normal(rng, 0, 1, 6, 6))},
		func(in []*Tensor) *Tensor { return MatMul(in[0], in[0]) },
		func(in []arr) arr { return refMatMul(in[0], in[0]) }, gemmTol)
	convTol := gemmTol
	convTol.noGradMayDiffer = mayTakeImplicitForward(3, 3, 3, 1)
	checkGradOpts(t, "Conv2D(Conv2D(x, w), w)", []*Tensor{param(normal(rng, 0, 1, 2, 5, 6, 3)), param(normal(rng, 0, 0.4, 3, 3, 3, 3))},
		func(in []*Tensor) *Tensor { return Conv2D(Relu(Conv2D(in[0], in[1], 1)), in[1], 1) },
		func(in []arr) arr {
			h := refMap(refConv(in[0], in[1], 1), func(v float64) float64 { return math.Max(v, 0) })
			return refConv(h, in[1], 1)
		}, convTol)

	// gamma and beta shared by two batch norms.
	checkGradOpts(t, "BatchNorm(Tanh(BatchNorm(x)))", []*Tensor{param(normal(rng, 1, 2, 3, 2, 2, 3)), param(uniform(rng, 0.5, 1.5, 3)), param(normal(rng, 0, 1, 3))},
		func(in []*Tensor) *Tensor {
			st := &BatchNormStats{Momentum: 0.1, Eps: 1e-5}
			return BatchNorm(Tanh(BatchNorm(in[0], in[1], in[2], st, true)), in[1], in[2], st, true)
		},
		func(in []arr) arr {
			h := refMap(refBatchNorm(in[0], in[1], in[2], nil, nil, 1e-5), math.Tanh)
			return refBatchNorm(h, in[1], in[2], nil, nil, 1e-5)
		}, gradOpts{fwdRtol: 1e-5, fwdAtol: 1e-5})

	// Gradients accumulate across Backward calls until ZeroGrad.
	x := param(normal(rng, 0, 1, 3, 4))
	Backward(Sum(Square(x)))
	first := append([]float32(nil), x.Grad...)
	Backward(Sum(Square(x)))
	for i, g := range x.Grad {
		if g != 2*first[i] || math.Abs(float64(first[i])-2*float64(x.Data[i])) > 1e-6 {
			t.Fatalf("gradient after two Backward calls: %v, after one %v (x %v)", g, first[i], x.Data[i])
		}
	}
	x.ZeroGrad()
	if x.Grad != nil {
		t.Errorf("ZeroGrad left %v", x.Grad)
	}
}

func TestGradFreeRecordsNothing(t *testing.T) {
	rng := gcRNG(14)
	x := param(normal(rng, 0, 1, 2, 4, 4, 3))
	w := param(normal(rng, 0, 1, 3, 3, 3, 2))
	gamma, beta := param(Full(1, 2)), param(New(2))
	stats := &BatchNormStats{Momentum: 0.1, Eps: 1e-5}
	var out *Tensor
	p := GradFree()
	if p.Grad() || Recording(p.Input(x)) {
		t.Errorf("a gradient-free pass records")
	}
	out = Mean(BatchNorm(Conv2D(Exp(p.Input(x)), w, 1), gamma, beta, stats, true))
	if PassOf(out) != p {
		t.Errorf("the output left the pass of its input")
	}
	if out.node != nil || out.RequiresGrad() {
		t.Errorf("gradient-free output records a node")
	}
	msg := panicMessage(func() { Backward(out) })
	if !strings.HasPrefix(msg, "tensor: ") {
		t.Errorf("Backward of a gradient-free result: panic %q, want a \"tensor: \" message", msg)
	}
	for _, p := range []*Tensor{x, w, gamma, beta} {
		if p.Grad != nil {
			t.Errorf("gradient-free pass: parameter %v received a gradient", p.Shape)
		}
	}
	// The default pass records meanwhile.
	y := Exp(x)
	if y.node == nil || !y.RequiresGrad() {
		t.Errorf("the default pass did not record beside a gradient-free one")
	}
	// Constants alone record nothing.
	if z := Exp(x.Detach()); z.node != nil || z.RequiresGrad() {
		t.Errorf("operation on constants recorded a node")
	}
}

func panicMessage(fn func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		} else {
			msg = "<no panic>"
		}
	}()
	fn()
	return ""
}

func TestPanics(t *testing.T) {
	rng := gcRNG(15)
	x := param(normal(rng, 0, 1, 2, 3))
	cases := []struct {
		name string
		fn   func()
	}{
		{"Backward of non-scalar", func() { Backward(Exp(x)) }},
		{"Backward of [1, 2]", func() { Backward(Reshape(Exp(x), 3, 2)) }},
		{"Backward of constant scalar", func() { Backward(New(1)) }},
		{"Add shape mismatch", func() { Add(x, New(3, 2)) }},
		{"Mul shape mismatch", func() { Mul(x, New(2, 4)) }},
		{"AddChannel", func() { AddChannel(x, New(2)) }},
		{"MulExample", func() { MulExample(x, New(2)) }},
		{"Where", func() { Where(New(2), x, x) }},
		{"Reshape", func() { Reshape(x, 4, 2) }},
		{"Concat", func() { Concat(x, New(3, 3)) }},
		{"Slice", func() { Slice(x, 2, 4) }},
		{"Squeeze2x2 odd", func() { Squeeze2x2(New(1, 3, 2, 1)) }},
		{"Unsqueeze2x2", func() { Unsqueeze2x2(New(1, 1, 1, 3)) }},
		{"MatMul", func() { MatMul(x, New(2, 2)) }},
		{"Conv2D channels", func() { Conv2D(New(1, 3, 3, 2), New(3, 3, 1, 1), 1) }},
		{"Conv2D empty", func() { Conv2D(New(1, 2, 2, 1), New(3, 3, 1, 1), 0) }},
		{"BatchNorm one value", func() { BatchNorm(New(1, 2), Full(1, 2), New(2), &BatchNormStats{Eps: 1e-5}, true) }},
		{"Item", func() { x.Item() }},
		{"FromData", func() { FromData(make([]float32, 5), 2, 3) }},
	}
	for _, c := range cases {
		if msg := panicMessage(c.fn); !strings.HasPrefix(msg, "tensor: ") {
			t.Errorf("%s: panic %q, want a message starting with \"tensor: \"", c.name, msg)
		}
	}
}
