package bijector

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// InvConv1x1 is Glow's invertible 1x1 convolution: the same C x C matrix
// K applied to the channels of every position,
//
//	forward:  z = x·K    (x a row of C channels)
//	inverse:  x = z·K⁻¹
//	log-det:  (positions per example) · log|det K|
//
// Plain (NewInvConv1x1 with lu false, as the reference code) learns K
// itself; its log-det comes from an LU factorisation in float64 and its
// gradient is K⁻ᵀ. With the LU parametrisation (Kingma & Dhariwal 2018,
// Sec. 3.2) K = P·L·(U + diag(Sign ⊙ exp(LogS))) with a fixed permutation
// P, a unit lower triangular L and a strictly upper triangular U: the
// log-det is the sum of LogS, with no factorisation. Both start from a
// random rotation (the Q of the QR factorisation of a Gaussian matrix),
// as Glow does.
//
// Inverse computes K⁻¹ in float64 from the current parameters and records
// no gradient for them (sampling and inverting latents need none).
type InvConv1x1 struct {
	// W is K for the plain parametrisation, nil with LU.
	W *tensor.Tensor // [C, C]
	// With LU: L and U hold the strictly lower and upper parts that are
	// used (the other entries are ignored and get zero gradient), LogS
	// the log-magnitudes of U's diagonal; Sign and Perm are buffers:
	// the signs of the diagonal and P as a permutation (row Perm[i] of
	// P·M is row i of M).
	L, U, LogS *tensor.Tensor
	Sign, Perm *tensor.Tensor
	c          int
}

// NewInvConv1x1 returns a 1x1 convolution over c channels starting at a
// random rotation drawn from rng, LU-parametrised when lu is set.
func NewInvConv1x1(rng *tensor.RNG, c int, lu bool) *InvConv1x1 {
	q := randomRotation(rng, c)
	ic := &InvConv1x1{c: c}
	if !lu {
		ic.W = tensor.Param(c, c)
		for i := range q {
			ic.W.Data[i] = float32(q[i])
		}
		return ic
	}
	perm, l, u := luDecompose(q, c)
	ic.L, ic.U, ic.LogS = tensor.Param(c, c), tensor.Param(c, c), tensor.Param(c)
	ic.Sign, ic.Perm = tensor.New(c), tensor.New(c)
	for i := 0; i < c; i++ {
		ic.Perm.Data[i] = float32(perm[i])
		for j := 0; j < c; j++ {
			switch {
			case j < i:
				ic.L.Data[i*c+j] = float32(l[i*c+j])
			case j > i:
				ic.U.Data[i*c+j] = float32(u[i*c+j])
			}
		}
		d := u[i*c+i]
		ic.Sign.Data[i] = float32(math.Copysign(1, d))
		ic.LogS.Data[i] = float32(math.Log(math.Abs(d)))
	}
	return ic
}

// randomRotation returns the Q factor (row-major c x c) of the QR
// factorisation of a standard Gaussian matrix (modified Gram-Schmidt on
// the columns).
func randomRotation(rng *tensor.RNG, c int) []float64 {
	for {
		a := make([]float64, c*c)
		for i := range a {
			a[i] = rng.NormFloat64()
		}
		ok := true
		for j := 0; j < c && ok; j++ {
			for k := 0; k < j; k++ {
				var dot float64
				for i := 0; i < c; i++ {
					dot += a[i*c+j] * a[i*c+k]
				}
				for i := 0; i < c; i++ {
					a[i*c+j] -= dot * a[i*c+k]
				}
			}
			var norm float64
			for i := 0; i < c; i++ {
				norm += a[i*c+j] * a[i*c+j]
			}
			norm = math.Sqrt(norm)
			if norm < 1e-6 {
				ok = false // (almost) dependent columns: draw again
				break
			}
			for i := 0; i < c; i++ {
				a[i*c+j] /= norm
			}
		}
		if ok {
			return a
		}
	}
}

// luDecompose factorises the row-major c x c matrix a with partial
// pivoting: a[perm[i]] = (L·U)[i] row by row, L unit lower triangular, U
// upper triangular (both row-major c x c).
func luDecompose(a []float64, c int) (perm []int, l, u []float64) {
	m := append([]float64(nil), a...)
	perm = make([]int, c)
	for i := range perm {
		perm[i] = i
	}
	l = make([]float64, c*c)
	for k := 0; k < c; k++ {
		p := k
		for i := k + 1; i < c; i++ {
			if math.Abs(m[i*c+k]) > math.Abs(m[p*c+k]) {
				p = i
			}
		}
		if p != k {
			for j := 0; j < c; j++ {
				m[k*c+j], m[p*c+j] = m[p*c+j], m[k*c+j]
				l[k*c+j], l[p*c+j] = l[p*c+j], l[k*c+j]
			}
			perm[k], perm[p] = perm[p], perm[k]
		}
		for i := k + 1; i < c; i++ {
			f := m[i*c+k] / m[k*c+k]
			l[i*c+k] = f
			for j := k; j < c; j++ {
				m[i*c+j] -= f * m[k*c+j]
			}
		}
	}
	for i := 0; i < c; i++ {
		l[i*c+i] = 1
	}
	return perm, l, m
}

// invert returns the inverse of the row-major c x c matrix a and
// log|det a| (Gauss-Jordan with partial pivoting, float64). It panics on
// a singular matrix.
func invert(a []float64, c int) (inv []float64, logAbsDet float64) {
	m := append([]float64(nil), a...)
	inv = make([]float64, c*c)
	for i := 0; i < c; i++ {
		inv[i*c+i] = 1
	}
	for k := 0; k < c; k++ {
		p := k
		for i := k + 1; i < c; i++ {
			if math.Abs(m[i*c+k]) > math.Abs(m[p*c+k]) {
				p = i
			}
		}
		if m[p*c+k] == 0 {
			panic("bijector: singular 1x1 convolution")
		}
		if p != k {
			for j := 0; j < c; j++ {
				m[k*c+j], m[p*c+j] = m[p*c+j], m[k*c+j]
				inv[k*c+j], inv[p*c+j] = inv[p*c+j], inv[k*c+j]
			}
		}
		d := m[k*c+k]
		logAbsDet += math.Log(math.Abs(d))
		for j := 0; j < c; j++ {
			m[k*c+j] /= d
			inv[k*c+j] /= d
		}
		for i := 0; i < c; i++ {
			if i == k || m[i*c+k] == 0 {
				continue
			}
			f := m[i*c+k]
			for j := 0; j < c; j++ {
				m[i*c+j] -= f * m[k*c+j]
				inv[i*c+j] -= f * inv[k*c+j]
			}
		}
	}
	return inv, logAbsDet
}

// LU reports whether the convolution is LU-parametrised.
func (ic *InvConv1x1) LU() bool { return ic.W == nil }

func (ic *InvConv1x1) channels() int {
	if ic.W != nil {
		return ic.W.Shape[0]
	}
	return ic.LogS.Shape[0]
}

// Matrix returns K, float64 row-major, from the current parameters.
func (ic *InvConv1x1) Matrix() []float64 {
	c := ic.channels()
	k := make([]float64, c*c)
	if ic.W != nil {
		for i, v := range ic.W.Data {
			k[i] = float64(v)
		}
		return k
	}
	// L·U, then row i goes to row Perm[i]
	for i := 0; i < c; i++ {
		p := int(ic.Perm.Data[i])
		for j := 0; j < c; j++ {
			var s float64
			for t := 0; t <= min(i, j); t++ {
				lv := 1.0
				if t < i {
					lv = float64(ic.L.Data[i*c+t])
				}
				uv := float64(ic.U.Data[t*c+j])
				if t == j {
					uv = float64(ic.Sign.Data[j]) * math.Exp(float64(ic.LogS.Data[j]))
				}
				s += lv * uv
			}
			k[p*c+j] = s
		}
	}
	return k
}

// kernel returns K computed in p with gradients to the parameters.
func (ic *InvConv1x1) kernel(p *tensor.Pass) *tensor.Tensor {
	if ic.W != nil {
		return p.Input(ic.W)
	}
	c := ic.channels()
	lower, upper, eye, perm := tensor.New(c, c), tensor.New(c, c), tensor.New(c, c), tensor.New(c, c)
	for i := 0; i < c; i++ {
		eye.Data[i*c+i] = 1
		perm.Data[int(ic.Perm.Data[i])*c+i] = 1
		for j := 0; j < c; j++ {
			if j < i {
				lower.Data[i*c+j] = 1
			} else if j > i {
				upper.Data[i*c+j] = 1
			}
		}
	}
	lm := tensor.Mul(p.Input(ic.L), lower)
	lf := tensor.Add(lm, eye)
	es := tensor.Exp(p.Input(ic.LogS))
	d := tensor.Mul(es, p.Input(ic.Sign))
	diag := tensor.MulChannel(eye, d)
	um := tensor.Mul(p.Input(ic.U), upper)
	uf := tensor.Add(um, diag)
	lu := tensor.MatMul(lf, uf)
	k := tensor.MatMul(perm, lu)
	tensor.Done(lm, lf, es, d, diag, um, uf, lu)
	return k
}

// Forward implements flow.Bijector.
func (ic *InvConv1x1) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	c := ic.channels()
	if x.Dim(-1) != c {
		panic(fmt.Sprintf("bijector: 1x1 convolution over %d channels of input %v", c, x.Shape))
	}
	n := x.Shape[0]
	pos := float64(len(x.Data) / n / c)
	p := tensor.PassOf(x)
	k := p.Derived(ic, ic.kernel)
	z := tensor.MatMul(x, k)
	tensor.Done(k)
	if ic.W != nil {
		return z, ic.plainLogDet(p.Input(ic.W), n, pos)
	}
	return z, ScaledSum(p.Input(ic.LogS), n, pos)
}

// plainLogDet returns pos·log|det W| for each of n examples, whose
// gradient by W is pos·W⁻ᵀ per unit of output gradient.
func (ic *InvConv1x1) plainLogDet(w *tensor.Tensor, n int, pos float64) *tensor.Tensor {
	c := ic.channels()
	wf := make([]float64, c*c)
	for i, v := range w.Data {
		wf[i] = float64(v)
	}
	inv, lad := invert(wf, c)
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(pos * lad)
	}
	return tensor.Custom([]int{n}, out, []*tensor.Tensor{w}, func(gy []float32) {
		var g float64
		for _, e := range gy {
			g += float64(e)
		}
		gw := make([]float32, c*c)
		for i := 0; i < c; i++ {
			for j := 0; j < c; j++ {
				gw[i*c+j] = float32(g * pos * inv[j*c+i])
			}
		}
		tensor.AccumGrad(w, gw)
	})
}

// Inverse implements flow.Bijector.
func (ic *InvConv1x1) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	c := ic.channels()
	n := z.Shape[0]
	pos := float64(len(z.Data) / n / c)
	inv, lad := invert(ic.Matrix(), c)
	ki := tensor.New(c, c)
	for i, v := range inv {
		ki.Data[i] = float32(v)
	}
	x := tensor.MatMul(z, ki)
	return x, tensor.Full(float32(-pos*lad), n)
}

// Visit implements nn.Module.
func (ic *InvConv1x1) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	if ic.W != nil {
		fn(nn.Join(prefix, "weight"), ic.W, true)
		return
	}
	fn(nn.Join(prefix, "lower"), ic.L, true)
	fn(nn.Join(prefix, "upper"), ic.U, true)
	fn(nn.Join(prefix, "log_s"), ic.LogS, true)
	fn(nn.Join(prefix, "sign"), ic.Sign, false)
	fn(nn.Join(prefix, "perm"), ic.Perm, false)
}
