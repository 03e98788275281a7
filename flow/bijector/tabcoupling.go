package bijector

import (
	"fmt"

	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// TabularCoupling is RealNVP's affine coupling for feature vectors x of
// shape [N, D] with a half mask (App. O.1): x splits at k = D/2 into
// x[:k] and x[k:]; one part, x_id, conditions, the other, x_change, is
// transformed:
//
//	forward:  z_change = (x_change + t) ⊙ exp(s),   z_id = x_id
//	inverse:  x_change = z_change ⊙ exp(-s) - t
//	log-det:  Σ s,   s = scale ⊙ tanh(s_raw), (s_raw, t) = Net(x_id)
//
// Without Reverse x_id is x[:k] (the reference code's MaskTabular with
// reverse_mask false), with Reverse it is x[k:]; models alternate. Net
// sees x_id only and predicts s_raw and t for x_change alone, its output
// [N, 2·len(x_change)] holding s_raw first: the reference code's network
// sees the masked vector b⊙x of length D and predicts 2D values, of which
// the mask then drops half, which is the same family of maps with the
// weights of the always-zero inputs and dropped outputs left out. Scale is
// a learned per-feature scale, initialised to 1 (the reference's
// weight-normalised RescaleTabular).
//
// What follows the network is computed by two operations with
// hand-written backward passes (tensor.Custom), for z and for the
// log-det, instead of ten small ones: at the paper's UCI size (batch 32,
// 43 features) a step is dominated by the cost per operation.
type TabularCoupling struct {
	Net     STNet
	Scale   *tensor.Tensor // [len(x_change)]
	Reverse bool

	d int // D
}

// NewTabularCoupling returns a coupling of D features with the given
// st-network, which must map [N, len(x_id)] to [N, 2·len(x_change)]
// (len(x_id) = D/2 without reverse, D - D/2 with it). It panics if D < 2.
func NewTabularCoupling(d int, reverse bool, net STNet) *TabularCoupling {
	if d < 2 {
		panic(fmt.Sprintf("bijector: tabular coupling of %d features (want at least 2)", d))
	}
	c := &TabularCoupling{Net: net, Reverse: reverse, d: d}
	_, nc := c.Sizes()
	c.Scale = tensor.Param(nc)
	for i := range c.Scale.Data {
		c.Scale.Data[i] = 1
	}
	return c
}

// TabularSizes returns the number of conditioning and of transformed
// features of a TabularCoupling of d features.
func TabularSizes(d int, reverse bool) (id, change int) {
	k := d / 2
	if reverse {
		return d - k, k
	}
	return k, d - k
}

// Sizes returns the number of conditioning and of transformed features.
func (c *TabularCoupling) Sizes() (id, change int) { return TabularSizes(c.d, c.Reverse) }

// offsets returns where x_id and x_change start in a row.
func (c *TabularCoupling) offsets() (id, change int) {
	k := c.d / 2
	if c.Reverse {
		return k, 0
	}
	return 0, k
}

// st runs the network on the conditioning part of x.
func (c *TabularCoupling) st(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 2 || x.Shape[1] != c.d {
		panic(fmt.Sprintf("bijector: tabular coupling of %d features given %v", c.d, x.Shape))
	}
	nid, nc := c.Sizes()
	oid, _ := c.offsets()
	id := tensor.Slice(x, oid, oid+nid)
	out := c.Net.Forward(id)
	tensor.Done(id)
	if len(out.Shape) != 2 || out.Shape[1] != 2*nc {
		panic(fmt.Sprintf("bijector: tabular st-network output %v, want [N, %d]", out.Shape, 2*nc))
	}
	return out
}

// Forward implements flow.Bijector.
func (c *TabularCoupling) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	out := c.st(x)
	th, e := c.scales(out, false)
	z := c.affine(x, out, th, e, false)
	ld := c.logDet(out, th, 1)
	tensor.Done(out)
	return z, ld
}

// Inverse implements flow.Bijector.
func (c *TabularCoupling) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	out := c.st(z)
	th, e := c.scales(out, true)
	x := c.affine(z, out, th, e, true)
	ld := c.logDet(out, th, -1)
	tensor.Done(out)
	return x, ld
}

// scales returns tanh(s_raw) and exp(s), or exp(-s) with inverse, per
// transformed value ([N, len(x_change)]), from the network output st.
func (c *TabularCoupling) scales(st *tensor.Tensor, inverse bool) (th, e []float32) {
	n := st.Shape[0]
	_, nc := c.Sizes()
	th = make([]float32, n*nc)
	e = make([]float32, n*nc)
	for r := 0; r < n; r++ {
		copy(th[r*nc:(r+1)*nc], st.Data[r*2*nc:r*2*nc+nc])
	}
	kernels.Tanh(th, th)
	scale := c.Scale.Data
	for r := 0; r < n; r++ {
		tr, er := th[r*nc:(r+1)*nc], e[r*nc:(r+1)*nc]
		for j, h := range tr {
			if inverse {
				er[j] = -h * scale[j]
			} else {
				er[j] = h * scale[j]
			}
		}
	}
	kernels.Exp(e, e)
	return th, e
}

// affine returns x with its x_change part mapped to (x + t)·e, or with
// inverse to x·e - t, where t is the shift in the network output st and
// e = exp(±s) (th = tanh(s_raw), for the backward pass).
func (c *TabularCoupling) affine(x, st *tensor.Tensor, th, e []float32, inverse bool) *tensor.Tensor {
	n, d := x.Shape[0], c.d
	_, nc := c.Sizes()
	_, oc := c.offsets()
	z := make([]float32, len(x.Data))
	copy(z, x.Data)
	for r := 0; r < n; r++ {
		xr, zr := x.Data[r*d+oc:r*d+oc+nc], z[r*d+oc:r*d+oc+nc]
		t, er := st.Data[r*2*nc+nc:(r+1)*2*nc], e[r*nc:(r+1)*nc]
		if inverse {
			for j := range zr {
				zr[j] = xr[j]*er[j] - t[j]
			}
		} else {
			for j := range zr {
				zr[j] = (xr[j] + t[j]) * er[j]
			}
		}
	}
	return tensor.Custom(x.Shape, z, []*tensor.Tensor{x, st, c.Scale}, func(gz []float32) {
		c.affineBackward(x, st, th, e, gz, inverse)
	})
}

// affineBackward adds the gradients of affine's output, gz, into those of
// x, st and Scale.
func (c *TabularCoupling) affineBackward(x, st *tensor.Tensor, th, e, gz []float32, inverse bool) {
	n, d := x.Shape[0], c.d
	_, nc := c.Sizes()
	_, oc := c.offsets()
	scale := c.Scale.Data
	wantX, wantST, wantS := x.RequiresGrad(), st.RequiresGrad(), c.Scale.RequiresGrad()
	var gx, gst, gs []float32
	if wantX {
		gx = make([]float32, len(gz))
		copy(gx, gz)
	}
	if wantST {
		gst = make([]float32, len(st.Data))
	}
	if wantS {
		gs = make([]float32, nc)
	}
	for r := 0; r < n; r++ {
		g := gz[r*d+oc : r*d+oc+nc]
		er, tr := e[r*nc:(r+1)*nc], th[r*nc:(r+1)*nc]
		xr := x.Data[r*d+oc : r*d+oc+nc]
		t := st.Data[r*2*nc+nc : (r+1)*2*nc]
		for j, gj := range g {
			// forward: z = (x + t)·e, dz/dx = dz/dt = e, dz/ds = z;
			// inverse: x' = x·e - t with e = exp(-s), dx'/dx = e,
			// dx'/dt = -1, dx'/ds = -x·e.
			var dx, dt, ds float32
			if inverse {
				dx, dt, ds = gj*er[j], -gj, -gj*xr[j]*er[j]
			} else {
				dx = gj * er[j]
				dt, ds = dx, dx*(xr[j]+t[j])
			}
			if wantX {
				gx[r*d+oc+j] = dx
			}
			if wantST {
				gst[r*2*nc+j] = ds * scale[j] * (1 - tr[j]*tr[j])
				gst[r*2*nc+nc+j] = dt
			}
			if wantS {
				gs[j] += ds * tr[j]
			}
		}
	}
	if wantX {
		tensor.AccumGrad(x, gx)
	}
	if wantST {
		tensor.AccumGrad(st, gst)
	}
	if wantS {
		tensor.AccumGrad(c.Scale, gs)
	}
}

// logDet returns sign·Σ s per example (summed in float64), s = scale ⊙
// th, th = tanh(s_raw) of the network output st.
func (c *TabularCoupling) logDet(st *tensor.Tensor, th []float32, sign float32) *tensor.Tensor {
	n := st.Shape[0]
	_, nc := c.Sizes()
	scale := c.Scale.Data
	ld := make([]float32, n)
	for r := 0; r < n; r++ {
		var sum float64
		for j, h := range th[r*nc : (r+1)*nc] {
			sum += float64(h * scale[j])
		}
		ld[r] = sign * float32(sum)
	}
	return tensor.Custom([]int{n}, ld, []*tensor.Tensor{st, c.Scale}, func(gld []float32) {
		var gst, gs []float32
		if st.RequiresGrad() {
			gst = make([]float32, len(st.Data))
		}
		if c.Scale.RequiresGrad() {
			gs = make([]float32, nc)
		}
		for r := 0; r < n; r++ {
			g := sign * gld[r]
			for j, h := range th[r*nc : (r+1)*nc] {
				if gst != nil {
					gst[r*2*nc+j] = g * scale[j] * (1 - h*h)
				}
				if gs != nil {
					gs[j] += g * h
				}
			}
		}
		if gst != nil {
			tensor.AccumGrad(st, gst)
		}
		if gs != nil {
			tensor.AccumGrad(c.Scale, gs)
		}
	})
}

// Visit implements nn.Module.
func (c *TabularCoupling) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	fn(nn.Join(prefix, "scale"), c.Scale, true)
	c.Net.Visit(nn.Join(prefix, "st_net"), fn)
}
