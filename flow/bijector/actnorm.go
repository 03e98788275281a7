package bijector

import (
	"fmt"
	"math"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// ActNorm is Glow's activation normalisation: a per-channel affine map
// with a data-dependent initialisation.
//
//	forward:  z = (x + Bias) ⊙ exp(LogScale)   (per channel, the last dimension)
//	inverse:  x = z ⊙ exp(-LogScale) - Bias
//	log-det:  (number of positions per example) · Σ LogScale
//
// The first Forward in training mode (Mode.Train) of an ActNorm that is
// not yet initialised sets Bias and LogScale so that its output on that
// batch has zero mean and unit variance per channel (Bias = -mean,
// LogScale = -log(std + 1e-6), as the reference code's ActNorm2d), and
// marks it initialised. The mark is the buffer Initialized (1 once done),
// saved in checkpoints with the parameters: a model loaded from a
// checkpoint is never initialised again. Forward in evaluation mode, and
// Inverse, never initialise.
//
// With Mode.Group set (data-parallel replicas sharing the parameters),
// the statistics are those of the whole batch: the replicas add their
// sums through the group, and rank 0 alone writes the parameters before
// the others read them.
type ActNorm struct {
	Bias, LogScale *tensor.Tensor // [C]
	Initialized    *tensor.Tensor // [1], buffer: 1 once initialised
	Mode           *nn.Mode
}

// NewActNorm returns an uninitialised actnorm over c channels governed by
// mode (the model's: training mode initialises it).
func NewActNorm(c int, mode *nn.Mode) *ActNorm {
	return &ActNorm{Bias: tensor.Param(c), LogScale: tensor.Param(c), Initialized: tensor.New(1), Mode: mode}
}

// IsInitialized reports whether the data-dependent initialisation is done
// (or was restored from a checkpoint).
func (a *ActNorm) IsInitialized() bool { return a.Initialized.Data[0] != 0 }

// initialize sets Bias and LogScale from the statistics of x.
func (a *ActNorm) initialize(x *tensor.Tensor) {
	c := x.Dim(-1)
	rows := len(x.Data) / c
	// sums and sums of squares per channel, then the count
	v := make([]float64, 2*c+1)
	for r := 0; r < rows; r++ {
		row := x.Data[r*c : (r+1)*c]
		for j, e := range row {
			v[j] += float64(e)
		}
	}
	v[2*c] = float64(rows)
	g, rank := a.groupOf()
	if g != nil {
		// the mean first, then the squared deviations from it: the
		// two-pass variance, as the reference computes it
		g.AllSum(rank, v)
	}
	n := v[2*c]
	mean := make([]float64, c)
	for j := range mean {
		mean[j] = v[j] / n
	}
	sq := make([]float64, c)
	for r := 0; r < rows; r++ {
		row := x.Data[r*c : (r+1)*c]
		for j, e := range row {
			d := float64(e) - mean[j]
			sq[j] += d * d
		}
	}
	if g != nil {
		g.AllSum(rank, sq)
	}
	if g == nil || rank == 0 {
		for j := 0; j < c; j++ {
			std := math.Sqrt(sq[j] / n)
			a.Bias.Data[j] = float32(-mean[j])
			a.LogScale.Data[j] = float32(-math.Log(std + 1e-6))
		}
		a.Initialized.Data[0] = 1
	}
	if g != nil {
		// a barrier: the other replicas read the parameters (shared
		// memory) after rank 0 has written them
		g.AllSum(rank, make([]float64, 1))
	}
}

func (a *ActNorm) groupOf() (*tensor.Group, int) {
	if a.Mode == nil || a.Mode.Group == nil || a.Mode.Group.Size() < 2 {
		return nil, 0
	}
	return a.Mode.Group, a.Mode.Rank
}

// Forward implements flow.Bijector.
func (a *ActNorm) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	if x.Dim(-1) != a.Bias.Shape[0] {
		panic(fmt.Sprintf("bijector: ActNorm over %d channels of input %v", a.Bias.Shape[0], x.Shape))
	}
	if a.Mode != nil && a.Mode.Train && !a.IsInitialized() {
		a.initialize(x)
	}
	p := tensor.PassOf(x)
	ls := p.Input(a.LogScale)
	es := tensor.Exp(ls)
	xb := tensor.AddChannel(x, p.Input(a.Bias))
	z := tensor.MulChannel(xb, es)
	tensor.Done(xb, es)
	return z, ScaledSum(ls, x.Shape[0], float64(len(x.Data)/x.Shape[0]/x.Dim(-1)))
}

// Inverse implements flow.Bijector.
func (a *ActNorm) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	p := tensor.PassOf(z)
	ls := p.Input(a.LogScale)
	nls := tensor.Neg(ls)
	es := tensor.Exp(nls)
	zs := tensor.MulChannel(z, es)
	nb := tensor.Neg(p.Input(a.Bias))
	x := tensor.AddChannel(zs, nb)
	tensor.Done(es, zs)
	return x, ScaledSum(nls, z.Shape[0], float64(len(z.Data)/z.Shape[0]/z.Dim(-1)))
}

// Visit implements nn.Module: bias and logs are trainable, initialized a
// buffer.
func (a *ActNorm) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	fn(nn.Join(prefix, "bias"), a.Bias, true)
	fn(nn.Join(prefix, "logs"), a.LogScale, true)
	fn(nn.Join(prefix, "initialized"), a.Initialized, false)
}

// ScaledSum returns the [n] tensor whose every element is factor·Σv (in
// float64), with its gradient: the log-det of a layer that applies the
// same per-channel map at every position (factor positions) of each of n
// examples. v's pass is the result's.
func ScaledSum(v *tensor.Tensor, n int, factor float64) *tensor.Tensor {
	var s float64
	for _, e := range v.Data {
		s += float64(e)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(factor * s)
	}
	return tensor.Custom([]int{n}, out, []*tensor.Tensor{v}, func(gy []float32) {
		var g float64
		for _, e := range gy {
			g += float64(e)
		}
		gv := make([]float32, len(v.Data))
		for i := range gv {
			gv[i] = float32(factor * g)
		}
		tensor.AccumGrad(v, gv)
	})
}
