package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// inline counts the Each calls in progress: while there is one, Workers
// reports 1 and every kernel runs on its caller's goroutine.
var inline atomic.Int32

// Workers returns the number of goroutines the kernels split work across:
// GOMAXPROCS at the time of the call, or 1 while Each or Together runs.
// That state is process-wide: while they run, kernels called from any
// goroutine run single-threaded (and reductions split into parts by the
// number of workers, such as batch-norm statistics, are then summed in
// one part).
func Workers() int {
	if inline.Load() > 0 {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}

// ParallelFor splits the half-open range [0, n) into at most Workers()
// contiguous chunks of at least grain elements and calls fn(lo, hi) for each,
// concurrently, returning when all calls have returned. With n <= grain or a
// single worker, fn runs on the calling goroutine. grain < 1 is treated as 1.
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	w := Workers()
	if chunks := (n + grain - 1) / grain; chunks < w {
		w = chunks
	}
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for i := 1; i < w; i++ {
		lo, hi := i*n/w, (i+1)*n/w
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/w)
	wg.Wait()
}

// Each calls fn(i) for every i in [0, n) on up to Workers() goroutines,
// each taking the next i not yet taken, and returns when all calls have
// returned; a panic in a call is raised again on the caller's goroutine
// then. While it runs the kernels are single-threaded (Workers reports
// 1) in every goroutine of the process. It is for work that falls into
// independent parts, such as the examples of a gradient-free batch: one
// part per core keeps each core's data in its own cache, where splitting
// every operation across the cores streams each intermediate through the
// shared cache or memory.
func Each(n int, fn func(i int)) {
	w := min(Workers(), n)
	if w <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	inline.Add(1)
	defer inline.Add(-1)
	var next atomic.Int64
	var p panicked
	work := func() {
		defer p.catch()
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i)
		}
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	for k := 1; k < w; k++ {
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	p.rethrow()
}

// panicked holds the first panic of a group of goroutines, so that it is
// raised again on the caller's goroutine (where it can be recovered)
// instead of ending the process.
type panicked struct {
	mu    sync.Mutex
	value any
	set   bool
}

// catch, deferred, records a panic of the goroutine.
func (p *panicked) catch() {
	if v := recover(); v != nil {
		p.mu.Lock()
		if !p.set {
			p.value, p.set = v, true
		}
		p.mu.Unlock()
	}
}

// rethrow panics with the recorded value, if any.
func (p *panicked) rethrow() {
	if p.set {
		panic(p.value)
	}
}

// Together calls fn(0), ..., fn(n-1) each on its own goroutine, all at
// the same time, so that the calls may wait for each other (as the
// replicas of a data-parallel step do at every batch norm), and returns
// when all have returned. Like Each, it makes the kernels single-threaded
// while it runs. A panic in a call is raised again on the caller's
// goroutine once all calls have returned; a call that fails must
// therefore release the others from any wait for it (tensor.Group.Abort).
func Together(n int, fn func(i int)) {
	if n <= 1 {
		if n == 1 {
			fn(0)
		}
		return
	}
	inline.Add(1)
	defer inline.Add(-1)
	var p panicked
	var wg sync.WaitGroup
	wg.Add(n - 1)
	for i := 1; i < n; i++ {
		go func() {
			defer wg.Done()
			defer p.catch()
			fn(i)
		}()
	}
	func() {
		defer p.catch()
		fn(0)
	}()
	wg.Wait()
	p.rethrow()
}
