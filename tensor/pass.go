package tensor

import (
	"sync"

	"github.com/flowood/flowood/kernels"
)

// A Pass is the state of one computation through a model: whether its
// operations record backward nodes, how many goroutines each operation
// may use, which pooled buffers its intermediates hold, and (optionally)
// the Winograd transforms of the parameters it convolves with. The engine
// keeps no such state for the process: every tensor carries the pass it
// was computed in, and an operation runs in the pass of its first input
// that has one. So any number of goroutines can evaluate one model at
// once, each in a pass of its own, and training (with recording) can run
// beside them.
//
// A tensor with no pass (the data and parameters a caller makes, and
// everything computed from them alone) is in the default pass: it
// records for Backward, its operations use kernels.Workers() goroutines,
// and its intermediates are recycled by Backward.
//
// A Pass is used by one goroutine at a time (its operations may spread
// their work over several); its Sub passes may run side by side.
type Pass struct {
	grad      bool
	workers   int          // 0: kernels.Workers()
	cache     *weightCache // Winograd transforms of parameters; nil: none
	parent    *Pass        // the pass a Child or Sub pass was made from
	ownsCache bool

	mu     sync.Mutex // guards owned and closed (children close beside p)
	owned  []*Tensor  // tensors made in the pass that hold a pooled buffer
	closed bool
}

// PassOptions configure NewPass.
type PassOptions struct {
	// Grad makes operations record backward nodes (where an input
	// requires gradients), as in the default pass.
	Grad bool
	// Workers is the most goroutines an operation may use; 0 means
	// kernels.Workers(). Results do not depend on it only where no
	// reduction is split by worker (set it the same for runs that must
	// agree bit for bit).
	Workers int
	// CacheWeights keeps the Winograd transform of each parameter's
	// convolution kernel for the whole pass, and its Sub passes, instead
	// of computing it at every convolution. The parameters must not change
	// while the pass is open.
	CacheWeights bool
}

// NewPass returns a new pass. Close it when its results have been read.
func NewPass(o PassOptions) *Pass {
	p := &Pass{grad: o.Grad, workers: max(o.Workers, 0)}
	if o.CacheWeights {
		p.cache, p.ownsCache = &weightCache{}, true
	}
	return p
}

// Child returns a pass nested in p: with p's workers and weight
// transforms, recording when grad is set, whose Close hands the tensors
// it keeps to p (so that they are recycled when p closes, or by Done). A
// child of the default pass (p nil) is a new pass of its own.
func (p *Pass) Child(grad bool) *Pass {
	if p == nil {
		return NewPass(PassOptions{Grad: grad})
	}
	return &Pass{grad: grad, workers: p.workers, cache: p.cache, parent: p}
}

// GradFree returns a new pass that records nothing, as for evaluation.
func GradFree() *Pass { return NewPass(PassOptions{}) }

// Sub returns a pass for one part of p's work that runs beside the other
// parts (kernels.Each): a Child of p, recording as p does, whose
// operations run on the calling goroutine alone. Close it when its part is
// done, before p.
func (p *Pass) Sub() *Pass {
	if p == nil {
		return NewPass(PassOptions{Grad: true, Workers: 1})
	}
	return &Pass{grad: p.grad, workers: 1, cache: p.cache, parent: p}
}

// Grad reports whether p's operations record backward nodes.
func (p *Pass) Grad() bool { return p == nil || p.grad }

// Input returns a tensor sharing x's data (and shape) whose operations
// run in p. In a recording pass, gradients reach x.
func (p *Pass) Input(x *Tensor) *Tensor {
	if p == nil {
		return x
	}
	out := view(x, x.Shape, p)
	if p.grad {
		record(out, func() { addGrad(x, out.Grad) }, x)
	}
	return out
}

// FromData wraps data (not copied) as a tensor of the given shape in p.
func (p *Pass) FromData(data []float32, shape ...int) *Tensor {
	t := FromData(data, shape...)
	t.pass = p
	return t
}

// Close ends p: the pooled buffer of every intermediate made in p is
// handed back for reuse once no other tensor shares it, except those of
// keep (and of views of them), which stay valid and pass to p's parent
// (Child, Sub), or, without one, to the garbage collector; the weight
// transforms p made are released. Tensors made in p other than keep must
// not be used afterwards. Close is idempotent.
func (p *Pass) Close(keep ...*Tensor) {
	if p == nil {
		return
	}
	p.mu.Lock()
	owned, closed := p.owned, p.closed
	p.owned, p.closed = nil, true
	p.mu.Unlock()
	if closed {
		return
	}
	var kept map[*Tensor]bool // nil reads as empty: no map for the usual Close()
	if len(keep) > 0 {
		kept = make(map[*Tensor]bool, len(keep))
	}
	for _, k := range keep {
		if k != nil && k.pass == p {
			kept[k] = true
		}
	}
	for _, t := range owned {
		if !kept[t] {
			t.drop()
			continue
		}
		if p.parent != nil {
			t.pass = p.parent
			p.parent.track(t)
		}
	}
	if p.ownsCache {
		p.cache.release()
	}
	p.cache = nil
}

// Derived returns a tensor that fn computes from parameters alone (a
// weight-normalised kernel, say), identified by key. In a gradient-free
// pass that caches weights (PassOptions.CacheWeights), and its Sub
// passes, the first call computes it and every later one shares it, and
// convolutions cache its Winograd transforms as they do a parameter's: the
// parameters must not change while the pass is open. Elsewhere fn runs at
// every call. fn computes in the pass it is given, to which it must give
// its inputs (Input); the caller may declare the result Done.
func (p *Pass) Derived(key any, fn func(q *Pass) *Tensor) *Tensor {
	if p == nil || p.grad || p.cache == nil {
		return fn(p)
	}
	if v, ok := p.cache.derived.Load(key); ok {
		return v.(*Tensor)
	}
	q := GradFree()
	t := fn(q)
	// A copy outside any pass: Done leaves it alone, and its memory is
	// the cache's for as long as the cache lives.
	d := &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...), constant: true}
	q.Close()
	v, _ := p.cache.derived.LoadOrStore(key, d)
	return v.(*Tensor)
}

// track registers t, which holds a pooled buffer, for Close.
func (p *Pass) track(t *Tensor) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if !p.closed {
		p.owned = append(p.owned, t)
	}
	p.mu.Unlock()
}

// par returns the goroutines p's operations may use.
func (p *Pass) par() kernels.Par {
	if p == nil {
		return 0
	}
	return kernels.Par(p.workers)
}

// each runs fn over [0, n) in parallel chunks of at least grain elements.
func (p *Pass) each(n int, fn func(lo, hi int)) { p.par().ParallelFor(n, grain, fn) }

// passOf returns the pass of the first of ts that has one (nil: the
// default pass).
func passOf(ts ...*Tensor) *Pass {
	for _, t := range ts {
		if t != nil && t.pass != nil {
			return t.pass
		}
	}
	return nil
}

// Recording reports whether operations on t record backward nodes (when
// an input requires gradients): in the default pass and in passes made
// with Grad.
func Recording(t *Tensor) bool { return t == nil || t.pass.Grad() }

// PassOf returns the pass t was computed in (nil: the default pass, also
// for a nil t).
func PassOf(t *Tensor) *Pass {
	if t == nil {
		return nil
	}
	return t.pass
}

// weightCache holds Winograd kernel transforms of parameters, keyed by
// the weights' memory and the tile size. Lookups read a sync.Map without
// writing shared memory: the cores evaluating chunks side by side look up
// every convolution's transform.
type weightCache struct {
	m       sync.Map // winoKey -> winoEntry
	derived sync.Map // Derived's key -> *Tensor
}

func (c *weightCache) release() {
	c.m.Range(func(k, e any) bool {
		release(e.(winoEntry).u)
		c.m.Delete(k)
		return true
	})
}
