package flow

import (
	"context"
	"fmt"

	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Bijector is an invertible map with a tractable log-Jacobian-determinant.
type Bijector interface {
	// Forward maps data x to latent z; logDet is log|det dz/dx| per example.
	Forward(x *tensor.Tensor) (z, logDet *tensor.Tensor)
	// Inverse maps z to x; logDet is log|det dx/dz| per example.
	Inverse(z *tensor.Tensor) (x, logDet *tensor.Tensor)
	nn.Module
}

// Chain composes bijectors: Forward applies Steps[0] first.
type Chain []Bijector

// Forward implements Bijector.
func (c Chain) Forward(x *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	var total *tensor.Tensor
	in := x
	for _, b := range c {
		z, ld := b.Forward(x)
		if x != in && x != z {
			tensor.Done(x) // recycled once no view (of z, say) shares it
		}
		x = z
		total = addLogDet(total, ld)
	}
	return x, orZero(total, x)
}

// Inverse implements Bijector.
func (c Chain) Inverse(z *tensor.Tensor) (*tensor.Tensor, *tensor.Tensor) {
	var total *tensor.Tensor
	in := z
	for i := len(c) - 1; i >= 0; i-- {
		x, ld := c[i].Inverse(z)
		if z != in && z != x {
			tensor.Done(z)
		}
		z = x
		total = addLogDet(total, ld)
	}
	return z, orZero(total, z)
}

// Visit implements nn.Module, naming step i "i".
func (c Chain) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	for i, b := range c {
		b.Visit(nn.Join(prefix, fmt.Sprint(i)), fn)
	}
}

func addLogDet(total, ld *tensor.Tensor) *tensor.Tensor {
	if total == nil {
		return ld
	}
	return tensor.Add(total, ld)
}

func orZero(ld, x *tensor.Tensor) *tensor.Tensor {
	if ld == nil {
		return tensor.New(x.Shape[0])
	}
	return ld
}

// Flow is a normalizing flow with a standard normal base distribution:
// log p(x) = log N(z; 0, I) + logDet with z, logDet = Bijector.Forward(x).
type Flow struct {
	Bijector
}

// LogProb returns log p(x) per example, shape [N], in nats.
func (f Flow) LogProb(x *tensor.Tensor) *tensor.Tensor {
	z, ld := f.Forward(x)
	return tensor.Add(tensor.StdNormalLogProb(z), ld)
}

// EvalChunk is the number of examples LogProbEach gives a core at a time:
// small enough that a chunk's activations stay in the core's own cache (8
// examples of 28x28 images with 16-32 hidden channels take 400 KB per
// activation at the widest layer). Measured on the cpu preset, batch 256,
// 2 cores (BenchmarkEval in model/realnvp, alternating binaries): in
// phases where this VM's two cores share the caches and memory badly,
// chunks of 32 (1.6 MB) gave 1227-1258 img/s, 16 1367-1389 and 8
// 1443-1456; in good phases 32 and 8 tie (1703-1721 vs 1707-1731) and 4
// is slower (1668-1683); on one core 8 is 1-4% slower than 32 (more,
// smaller operations).
const EvalChunk = 8

// LogProbEach returns log p(x) per example like LogProb, without gradient
// recording, computed on chunks of chunk examples (EvalChunk when chunk
// <= 0) by LogProbChunks, in a pass that transforms each convolution
// kernel once for all chunks (tensor.PassOptions.CacheWeights). The
// result is x's pass's. It requires a flow that treats the examples of a
// batch independently (batch norms with running statistics), and then
// equals LogProb up to rounding. For evaluation it is faster than LogProb
// on the whole batch: a core's intermediates stay in its own cache
// instead of every operation being split across the cores (on this
// project's 2-core machine, RealNVP's cpu preset at batch 256 went from
// ~950 to ~1330 img/s; see docs/perf.md).
func (f Flow) LogProbEach(x *tensor.Tensor, chunk int) *tensor.Tensor {
	p := tensor.NewPass(tensor.PassOptions{CacheWeights: true})
	defer p.Close()
	lp, _ := LogProbChunks(context.Background(), p, f.LogProb, x.Data, x.Shape, chunk)
	return tensor.PassOf(x).FromData(lp, len(lp))
}

// LogProbChunks returns logProb of the examples of data (shape[0]
// examples of shape[1:]), computed on chunks of chunk examples (EvalChunk
// when chunk <= 0) that the cores take one at a time (kernels.Each), each
// in a single-threaded Sub pass of parent. A short last chunk is padded
// to the full size with copies of its last example, whose results are
// discarded: the kernels' summation order can depend on the batch size
// (GEMM micro-kernels are chosen by the shape), and with every chunk the
// same shape an example's log-likelihood has the same bits whatever batch
// and goroutine it comes in (measured: up to 2e-5 relative otherwise).
// Once ctx is done no further chunk starts and ctx's error is returned.
func LogProbChunks(ctx context.Context, parent *tensor.Pass, logProb func(*tensor.Tensor) *tensor.Tensor,
	data []float32, shape []int, chunk int) ([]float32, error) {
	if chunk <= 0 {
		chunk = EvalChunk
	}
	n := shape[0]
	d := tensor.Numel(shape[1:])
	out := make([]float32, n)
	kernels.Each((n+chunk-1)/chunk, func(i int) {
		if ctx.Err() != nil {
			return
		}
		lo, hi := i*chunk, min((i+1)*chunk, n)
		x := chunkOf(data, lo, hi, chunk, d)
		sub := parent.Sub()
		defer sub.Close()
		lp := logProb(sub.FromData(x, append([]int{chunk}, shape[1:]...)...))
		copy(out[lo:hi], lp.Data)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// chunkOf returns examples lo..hi of data (d values each) as a chunk of
// chunk examples: a short last chunk is padded with copies of its last
// example, so that every chunk has the same shape (and an example the
// same bits whatever chunk it is in).
func chunkOf(data []float32, lo, hi, chunk, d int) []float32 {
	if hi-lo == chunk {
		return data[lo*d : hi*d]
	}
	x := make([]float32, chunk*d)
	copy(x, data[lo*d:hi*d])
	last := data[(hi-1)*d : hi*d]
	for j := hi - lo; j < chunk; j++ {
		copy(x[j*d:], last)
	}
	return x
}
