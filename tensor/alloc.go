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

// buffer is a pooled buffer and the number of tensors that hold it (the
// tensor an operation made, and the views that share its data). It goes
// back to the pool when the last of them lets go of it: that is the
// engine's one memory model. A tensor lets go (drop) when Done declares
// it unused in a gradient-free pass, when the pass it was made in closes,
// or when Backward consumes it; a buffer that a view still references is
// never recycled.
type buffer struct {
	data []float32
	refs atomic.Int32
}

// newOut returns an intermediate tensor of pass p whose data the caller
// will overwrite completely; the tensor holds a pooled buffer.
func newOut(p *Pass, shape []int) *Tensor {
	data := alloc(Numel(shape))
	t := &Tensor{Shape: shape, Data: data, pass: p, buf: &buffer{data: data}}
	t.buf.refs.Store(1)
	p.track(t)
	return t
}

// view returns a tensor of the given shape sharing x's data, in pass p;
// it holds x's buffer as x does.
func view(x *Tensor, shape []int, p *Pass) *Tensor {
	out := &Tensor{Shape: shape, Data: x.Data, pass: p}
	if b := x.buf; b != nil {
		b.refs.Add(1)
		out.buf = b
		p.track(out)
	}
	return out
}

// drop lets go of t's buffer, handing it back for reuse if no other
// tensor holds it; t has no data afterwards.
func (t *Tensor) drop() {
	b := t.buf
	t.buf, t.Data = nil, nil
	if b != nil && b.refs.Add(-1) == 0 {
		release(b.data)
	}
}

// exclusive reports whether t alone holds its pooled buffer, so that an
// operation may overwrite it in place.
func (t *Tensor) exclusive() bool { return t.buf != nil && t.buf.refs.Load() == 1 }
