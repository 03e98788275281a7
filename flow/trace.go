package flow

import (
	"context"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Tracer is a bijector made of others whose forward pass can be replayed
// one part at a time (bijector.MultiScale); TraceForward descends into it.
type Tracer interface {
	// TraceForward computes Forward(x) like TraceForward does, naming
	// its parts from prefix as its Visit names their tensors; stop is
	// set when visit asked to stop (z and logDet are then nil).
	TraceForward(x *tensor.Tensor, prefix string, visit func(name string, z, logDet *tensor.Tensor) bool) (z, logDet *tensor.Tensor, stop bool)
}

// TraceForward computes b.Forward(x) one bijector at a time: it descends
// into Chains (Recompute's too) and Tracers, and calls visit with the
// output and log-det of every other bijector, named as nn.Tensors names
// its tensors (the checkpoint name path: "1.steps.0" is step 0 of the
// first scale of a RealNVP), in the order Forward applies them. When visit
// returns true the trace stops, returning stop = true. It is meant for
// diagnosis (train's non-finite sentinel) in a gradient-free pass: it
// does not recycle intermediates.
func TraceForward(b Bijector, x *tensor.Tensor, prefix string, visit func(name string, z, logDet *tensor.Tensor) bool) (z, logDet *tensor.Tensor, stop bool) {
	switch v := b.(type) {
	case Chain:
		return traceChain(v, x, prefix, visit)
	case *Recompute:
		return traceChain(v.Chain, x, prefix, visit)
	case Tracer:
		return v.TraceForward(x, prefix, visit)
	}
	z, logDet = b.Forward(x)
	if visit(prefix, z, logDet) {
		return nil, nil, true
	}
	return z, logDet, false
}

func traceChain(c Chain, x *tensor.Tensor, prefix string, visit func(string, *tensor.Tensor, *tensor.Tensor) bool) (*tensor.Tensor, *tensor.Tensor, bool) {
	var total *tensor.Tensor
	for i, b := range c {
		z, ld, stop := TraceForward(b, x, nn.Join(prefix, strconv.Itoa(i)), visit)
		if stop {
			return nil, nil, true
		}
		x = z
		total = addLogDet(total, ld)
	}
	return x, orZero(total, x), false
}

// TraceForward traces f's bijector (see the function TraceForward) and
// then its base distribution's log-density, named "base" (visited with
// log p as z and a nil logDet).
func (f Flow) TraceForward(x *tensor.Tensor, visit func(name string, z, logDet *tensor.Tensor) bool) bool {
	z, ld, stop := TraceForward(f.Bijector, x, "", visit)
	if stop {
		return true
	}
	return visit("base", tensor.Add(tensor.StdNormalLogProb(z), ld), nil)
}

// Trace is log p(x) of a batch and its parts, per example (float64):
// LogProb = Prior + the sum of every layer's LogDet, summed in float64
// (so it differs from Flow.LogProb's float32 sum by rounding).
type Trace struct {
	LogProb []float64
	// Prior is log N(z; 0, I) of the latent z.
	Prior []float64
	// LatentNorm is the Euclidean norm of z.
	LatentNorm []float64
	// Layers holds each step's log-det in forward order, named as
	// TraceForward names them.
	Layers []LayerLogDet
}

// LayerLogDet is one step's log-det per example.
type LayerLogDet struct {
	Name string
	// Kind says what the step is (Describe of the bijector).
	Kind   string
	LogDet []float64
}

// Parent is a bijector made of named parts that TraceForward descends
// into (bijector.MultiScale: "steps" and "next"); Find resolves names
// through it.
type Parent interface {
	// Part returns the part named name, or nil.
	Part(name string) Bijector
}

// Find returns the bijector that TraceForward names path within b
// (Chains by index, Recompute's chain, Parents by part name), or nil
// when path names none.
func Find(b Bijector, path string) Bijector {
	for _, s := range strings.Split(path, ".") {
		if s == "" {
			continue
		}
		switch v := b.(type) {
		case *Recompute:
			b = v.Chain
		}
		switch v := b.(type) {
		case Chain:
			i, err := strconv.Atoi(s)
			if err != nil || i < 0 || i >= len(v) {
				return nil
			}
			b = v[i]
		case Parent:
			if b = v.Part(s); b == nil {
				return nil
			}
		default:
			return nil
		}
	}
	return b
}

// Describe returns a short description of b for reports: b's own
// Describe() when it has one, otherwise its type's name.
func Describe(b Bijector) string {
	if b == nil {
		return ""
	}
	if d, ok := b.(interface{ Describe() string }); ok {
		return d.Describe()
	}
	t := reflect.TypeOf(b)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// Trace computes log p(x) and its parts for the batch x in a
// gradient-free pass (TraceForward; put the model's batch norms in
// evaluation mode first, as for scoring).
func (f Flow) Trace(x *tensor.Tensor) Trace {
	p := tensor.GradFree()
	defer p.Close()
	return f.trace(p.Input(x))
}

// TraceChunks is Trace of the examples of data (shape[0] examples of
// shape[1:]) computed as LogProbChunks computes log p: on chunks of
// chunk examples (EvalChunk when chunk <= 0), a short last one padded,
// each in a single-threaded Sub pass of parent (which must not record),
// so that an example's trace has the same bits whatever batch it comes
// in. Once ctx is done no further chunk starts and ctx's error is
// returned.
func (f Flow) TraceChunks(ctx context.Context, parent *tensor.Pass, data []float32, shape []int, chunk int) (Trace, error) {
	if chunk <= 0 {
		chunk = EvalChunk
	}
	n := shape[0]
	d := tensor.Numel(shape[1:])
	parts := make([]Trace, (n+chunk-1)/chunk)
	kernels.Each(len(parts), func(i int) {
		if ctx.Err() != nil {
			return
		}
		lo, hi := i*chunk, min((i+1)*chunk, n)
		x := chunkOf(data, lo, hi, chunk, d)
		sub := parent.Sub()
		defer sub.Close()
		parts[i] = f.trace(sub.FromData(x, append([]int{chunk}, shape[1:]...)...)).slice(hi - lo)
	})
	if err := ctx.Err(); err != nil {
		return Trace{}, err
	}
	var tr Trace
	for _, p := range parts {
		tr.LogProb = append(tr.LogProb, p.LogProb...)
		tr.Prior = append(tr.Prior, p.Prior...)
		tr.LatentNorm = append(tr.LatentNorm, p.LatentNorm...)
		if tr.Layers == nil {
			tr.Layers = make([]LayerLogDet, len(p.Layers))
			for k, l := range p.Layers {
				tr.Layers[k].Name, tr.Layers[k].Kind = l.Name, l.Kind
			}
		}
		for k, l := range p.Layers {
			tr.Layers[k].LogDet = append(tr.Layers[k].LogDet, l.LogDet...)
		}
	}
	return tr, nil
}

// slice returns the first n examples of tr.
func (tr Trace) slice(n int) Trace {
	out := Trace{LogProb: tr.LogProb[:n], Prior: tr.Prior[:n], LatentNorm: tr.LatentNorm[:n]}
	for _, l := range tr.Layers {
		l.LogDet = l.LogDet[:n]
		out.Layers = append(out.Layers, l)
	}
	return out
}

// trace is Trace of x, a tensor of a pass that does not record.
func (f Flow) trace(x *tensor.Tensor) Trace {
	n := x.Shape[0]
	var tr Trace
	z, _, _ := TraceForward(f.Bijector, x, "", func(name string, _, l *tensor.Tensor) bool {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(l.Data[i])
		}
		tr.Layers = append(tr.Layers, LayerLogDet{Name: name, Kind: Describe(Find(f.Bijector, name)), LogDet: v})
		return false
	})
	prior := tensor.StdNormalLogProb(z)
	d := len(z.Data) / n
	tr.LogProb, tr.Prior, tr.LatentNorm = make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		tr.Prior[i] = float64(prior.Data[i])
		tr.LogProb[i] = tr.Prior[i]
		for _, l := range tr.Layers {
			tr.LogProb[i] += l.LogDet[i]
		}
		var s float64
		for _, v := range z.Data[i*d : (i+1)*d] {
			s += float64(v) * float64(v)
		}
		tr.LatentNorm[i] = math.Sqrt(s)
	}
	return tr
}
