package tensor

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The engine recycles the buffers of intermediate tensors: Backward hands
// every intermediate's gradient, and the data it owns, back to a free list
// keyed by length, and operations take their outputs from it. Training
// repeats the same shapes every step, so after the first step almost
// nothing is allocated, and the memory a step touches stays mapped and
// warm instead of being faulted in afresh (which measured 2-3x slower).
//
// The free list of each length is a sync.Pool, whose buffers stay with
// the processor (P) that released them: when two cores evaluate chunks
// side by side (kernels.Each), each takes back the buffers it has just
// written, still in its own cache. A single list shared by both, under a
// lock, handed a buffer released by one core to the other about half the
// time, every cache line of it then moving between the cores; in this
// VM's phases where that is slow, two cores evaluated at 1.4-1.6x one
// core instead of 1.9x (two separate processes reached 1.9x).
var free atomic.Pointer[sync.Map] // length -> *sync.Pool of *float32

func init() { free.Store(new(sync.Map)) }

// pool returns the free list of buffers of n values.
func pool(n int) *sync.Pool {
	m := free.Load()
	if p, ok := m.Load(n); ok {
		return p.(*sync.Pool)
	}
	p, _ := m.LoadOrStore(n, new(sync.Pool))
	return p.(*sync.Pool)
}

// alloc returns a buffer of n values with unspecified contents.
func alloc(n int) []float32 {
	if n < 1024 {
		return make([]float32, n)
	}
	if p, ok := pool(n).Get().(*float32); ok {
		return unsafe.Slice(p, n)
	}
	return make([]float32, n)
}

// allocZero returns a zeroed buffer of n values.
func allocZero(n int) []float32 {
	b := alloc(n)
	clear(b)
	return b
}

// release hands b back for reuse; b must not be used afterwards.
func release(b []float32) {
	if len(b) < 1024 {
		return
	}
	// The first element's pointer (pointer-shaped: no allocation) and
	// the pool's length give the buffer back.
	pool(len(b)).Put(&b[:1][0])
}

// ReleaseBuffers drops every recycled buffer and collects them, so that
// what runs next (evaluation after training) does not add its own buffers
// to the dropped ones still waiting for a collection.
func ReleaseBuffers() {
	free.Store(new(sync.Map))
	// A sync.Pool's buffers outlive one collection (as its victim cache).
	runtime.GC()
	runtime.GC()
}

// newOut returns an intermediate tensor whose data the caller will
// overwrite completely; the tensor owns its buffer.
func newOut(shape []int) *Tensor {
	t := &Tensor{Shape: shape, Data: alloc(Numel(shape)), owned: true}
	track(t)
	return t
}

// scopes is the stack of active Scoped calls, innermost the last of them;
// operations register the buffers they allocate with the innermost one.
// Like NoGrad it is process-wide: call Scoped from the goroutine that runs
// the model. The operations inside may run on several goroutines
// (kernels.Each).
var (
	scopes    []*scope
	scopesMu  sync.Mutex // guards scopes
	innermost atomic.Pointer[scope]
)

// scope holds the tensors registered with one Scoped call, in shards
// handed out by a sync.Pool: each processor appends to a shard of its
// own, so that cores running operations side by side do not write to
// shared memory (a lock and a list they shared cost a cache-line transfer
// per operation).
type scope struct {
	mu     sync.Mutex   // guards shards
	shards []*[]*Tensor // every shard made, in order
	free   sync.Pool    // of *[]*Tensor, from shards
}

func newScope() *scope {
	s := &scope{}
	s.free.New = func() any {
		sh := new([]*Tensor)
		s.mu.Lock()
		s.shards = append(s.shards, sh)
		s.mu.Unlock()
		return sh
	}
	return s
}

// add registers t.
func (s *scope) add(t *Tensor) {
	sh := s.free.Get().(*[]*Tensor)
	*sh = append(*sh, t)
	s.free.Put(sh)
}

// track registers t with the innermost scope.
func track(t *Tensor) {
	if s := innermost.Load(); s != nil {
		s.add(t)
	}
}

// Scoped runs fn and then recycles the buffers of every intermediate
// tensor created inside it, except the tensors fn returns (and views of
// them) and tensors recorded for a backward pass. It is for gradient-free
// computation (evaluation, recomputation), whose intermediates would
// otherwise be left to the garbage collector: recycling them keeps memory
// warm and flat. Tensors created inside fn other than those returned must
// not be used after Scoped returns.
func Scoped(fn func() []*Tensor) {
	sc := newScope()
	scopesMu.Lock()
	scopes = append(scopes, sc)
	innermost.Store(sc)
	scopesMu.Unlock()
	var keep []*Tensor
	defer func() {
		scopesMu.Lock()
		scopes = scopes[:len(scopes)-1]
		if n := len(scopes); n > 0 {
			innermost.Store(scopes[n-1])
		} else {
			innermost.Store(nil)
		}
		scopesMu.Unlock()
		kept := map[*float32]bool{}
		for _, k := range keep {
			if k != nil && len(k.Data) > 0 {
				kept[&k.Data[0]] = true
			}
		}
		sc.mu.Lock()
		shards := sc.shards
		sc.mu.Unlock()
		for _, sh := range shards {
			for _, t := range *sh {
				if !t.owned || t.node != nil || len(t.Data) == 0 || kept[&t.Data[0]] {
					if t.owned && len(t.Data) > 0 && kept[&t.Data[0]] {
						track(t) // hand ownership to the enclosing scope
					}
					continue
				}
				release(t.Data)
				t.Data, t.owned = nil, false
			}
			// The scope's pool outlives it by two collections: let go of
			// the tensors now.
			clear(*sh)
			*sh = nil
		}
	}()
	keep = fn()
}

// Release recycles the buffer of t if t owns one (an intermediate result)
// and has no backward node; t must not be used afterwards. Other tensors
// are left alone.
func Release(t *Tensor) {
	if t == nil || !t.owned || t.node != nil {
		return
	}
	release(t.Data)
	t.Data, t.owned = nil, false
}
