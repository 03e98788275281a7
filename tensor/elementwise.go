package tensor

import (
	"math"

	"github.com/flowood/flowood/kernels"
)

// grain is the smallest chunk of elements worth a goroutine.
const grain = 1 << 14

// unary applies f elementwise; df adds the input gradient given the output
// gradient gy, the input x and the output y.
func unary(x *Tensor, f func(y, x []float32), df func(gx, gy, x, y []float32)) *Tensor {
	p := passOf(x)
	out := newOut(p, x.Shape)
	p.each(len(x.Data), func(lo, hi int) { f(out.Data[lo:hi], x.Data[lo:hi]) })
	record(out, func() {
		gx, gy := x.grad(), out.Grad
		p.each(len(x.Data), func(lo, hi int) { df(gx[lo:hi], gy[lo:hi], x.Data[lo:hi], out.Data[lo:hi]) })
	}, x)
	return out
}

// Exp returns e^x elementwise (within 2 ulp; kernels.Exp).
func Exp(x *Tensor) *Tensor {
	return unary(x, kernels.Exp, func(gx, gy, _, y []float32) {
		for i := range gx {
			gx[i] += gy[i] * y[i]
		}
	})
}

// Log returns ln x elementwise (within 2 ulp; kernels.Log).
func Log(x *Tensor) *Tensor {
	return unary(x, kernels.Log, func(gx, gy, x, _ []float32) {
		for i := range gx {
			gx[i] += gy[i] / x[i]
		}
	})
}

// Tanh returns tanh x elementwise (within 2 ulp; kernels.Tanh).
func Tanh(x *Tensor) *Tensor {
	return unary(x, kernels.Tanh, func(gx, gy, _, y []float32) {
		for i := range gx {
			gx[i] += gy[i] * (1 - y[i]*y[i])
		}
	})
}

// Relu returns max(x, 0) elementwise; its derivative at 0 is taken as 0.
// Both passes work on the sign bit (kernels.ReluForward and ReluBackward),
// without branches: -0 and negative NaNs give +0.
func Relu(x *Tensor) *Tensor {
	return unary(x, kernels.ReluForward, func(gx, gy, _, y []float32) {
		// y > 0 exactly where x > 0
		kernels.ReluBackward(gx, gy, y)
	})
}

// Softplus returns ln(1 + e^x) elementwise, computed stably.
func Softplus(x *Tensor) *Tensor {
	return unary(x, func(y, x []float32) {
		for i, v := range x {
			y[i] = float32(softplus(float64(v)))
		}
	}, func(gx, gy, x, _ []float32) {
		for i := range gx {
			gx[i] += gy[i] * float32(sigmoid(float64(x[i])))
		}
	})
}

// Sigmoid returns 1/(1+e^-x) elementwise.
func Sigmoid(x *Tensor) *Tensor {
	return unary(x, func(y, x []float32) {
		for i, v := range x {
			y[i] = float32(sigmoid(float64(v)))
		}
	}, func(gx, gy, _, y []float32) {
		for i := range gx {
			gx[i] += gy[i] * y[i] * (1 - y[i])
		}
	})
}

// Scale returns a*x.
func Scale(x *Tensor, a float32) *Tensor {
	return unary(x, func(y, x []float32) {
		for i, v := range x {
			y[i] = a * v
		}
	}, func(gx, gy, _, _ []float32) {
		for i := range gx {
			gx[i] += a * gy[i]
		}
	})
}

// AddScalar returns x + a.
func AddScalar(x *Tensor, a float32) *Tensor {
	return unary(x, func(y, x []float32) {
		for i, v := range x {
			y[i] = v + a
		}
	}, func(gx, gy, _, _ []float32) {
		for i := range gx {
			gx[i] += gy[i]
		}
	})
}

// Neg returns -x.
func Neg(x *Tensor) *Tensor { return Scale(x, -1) }

// Square returns x*x elementwise.
func Square(x *Tensor) *Tensor {
	return unary(x, func(y, x []float32) {
		for i, v := range x {
			y[i] = v * v
		}
	}, func(gx, gy, x, _ []float32) {
		for i := range gx {
			gx[i] += 2 * x[i] * gy[i]
		}
	})
}

func softplus(v float64) float64 {
	if v > 0 {
		return v + math.Log1p(math.Exp(-v))
	}
	return math.Log1p(math.Exp(v))
}

func sigmoid(v float64) float64 {
	if v >= 0 {
		return 1 / (1 + math.Exp(-v))
	}
	e := math.Exp(v)
	return e / (1 + e)
}

// binary applies f elementwise to same-shaped a and b; da and db add the
// input gradients (either may be skipped when that input needs none).
func binary(op string, a, b *Tensor, f func(y, a, b []float32), da, db func(g, gy, a, b []float32)) *Tensor {
	p := passOf(a, b)
	mustSameShape(op, a, b)
	out := newOut(p, a.Shape)
	p.each(len(a.Data), func(lo, hi int) { f(out.Data[lo:hi], a.Data[lo:hi], b.Data[lo:hi]) })
	record(out, func() {
		gy := out.Grad
		if needs(a) {
			g := a.grad()
			p.each(len(g), func(lo, hi int) { da(g[lo:hi], gy[lo:hi], a.Data[lo:hi], b.Data[lo:hi]) })
		}
		if needs(b) {
			g := b.grad()
			p.each(len(g), func(lo, hi int) { db(g[lo:hi], gy[lo:hi], a.Data[lo:hi], b.Data[lo:hi]) })
		}
	}, a, b)
	return out
}

func accum(g, gy, _, _ []float32) { kernels.AddTo(g, gy) }

// Add returns a + b for tensors of the same shape.
func Add(a, b *Tensor) *Tensor {
	p := passOf(a, b)
	mustSameShape("Add", a, b)
	out := newOut(p, a.Shape)
	p.each(len(a.Data), func(lo, hi int) { kernels.Add(out.Data[lo:hi], a.Data[lo:hi], b.Data[lo:hi]) })
	record(out, func() {
		if needs(b) {
			addGrad(b, out.Grad)
		}
		if needs(a) {
			passGrad(a, out)
		}
	}, a, b)
	return out
}

// Sub returns a - b for tensors of the same shape.
func Sub(a, b *Tensor) *Tensor {
	return binary("Sub", a, b, func(y, a, b []float32) {
		for i := range y {
			y[i] = a[i] - b[i]
		}
	}, accum, func(g, gy, _, _ []float32) {
		for i := range g {
			g[i] -= gy[i]
		}
	})
}

// Mul returns a * b elementwise for tensors of the same shape.
func Mul(a, b *Tensor) *Tensor {
	return binary("Mul", a, b, kernels.Mul, func(g, gy, _, b []float32) {
		for i := range g {
			g[i] += gy[i] * b[i]
		}
	}, func(g, gy, a, _ []float32) {
		for i := range g {
			g[i] += gy[i] * a[i]
		}
	})
}

// CReLU returns the concatenated ReLU of x along its last dimension,
// [relu(x), relu(-x)], with twice x's channels, in one pass: the input
// layer of RealNVP's st-networks, Relu(Concat(x, Neg(x))), whose three
// passes over small tensors (1 to 4 channels) cost more in overhead than
// in arithmetic. ReLU clears values whose sign bit is set, as Relu does.
func CReLU(x *Tensor) *Tensor {
	p := passOf(x)
	c := x.Dim(-1)
	rows := len(x.Data) / max(c, 1)
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), 2*c)
	out := newOut(p, shape)
	p.par().ParallelFor(rows, grain/(2*c)+1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xs, ys := x.Data[r*c:(r+1)*c], out.Data[2*r*c:2*(r+1)*c]
			for i, v := range xs {
				ys[i], ys[c+i] = reluBits(v), reluBits(-v)
			}
		}
	})
	record(out, func() {
		gx, fresh := x.gradOut()
		gy := out.Grad
		p.par().ParallelFor(rows, grain/(2*c)+1, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				g, gys, ys := gx[r*c:(r+1)*c], gy[2*r*c:2*(r+1)*c], out.Data[2*r*c:2*(r+1)*c]
				for i := range g {
					// At most one half is positive: no rounding.
					var v float32
					if int32(math.Float32bits(ys[i])) > 0 {
						v = gys[i]
					} else if int32(math.Float32bits(ys[c+i])) > 0 {
						v = 0 - gys[c+i]
					}
					if fresh {
						g[i] = v
					} else {
						g[i] += v
					}
				}
			}
		})
	}, x)
	return out
}

// reluBits is ReLU on the sign bit: +0 where v's sign bit is set.
func reluBits(v float32) float32 {
	b := math.Float32bits(v)
	return math.Float32frombits(b &^ uint32(int32(b)>>31))
}
