package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Workers returns the number of goroutines the kernels split work across
// by default: GOMAXPROCS at the time of the call.
func Workers() int { return runtime.GOMAXPROCS(0) }

// Par is the number of goroutines a kernel may spread its work over,
// chosen by the caller: Par(1) runs every kernel on the caller's
// goroutine, Par(0) means Workers(). The package-level kernels use
// Par(0). It is how a caller that already runs parts side by side (Each,
// Together) keeps each part's kernels on its own core; there is no
// process-wide setting, so callers on other goroutines are unaffected.
type Par int

// count returns the number of goroutines w stands for.
func (w Par) count() int {
	if w <= 0 {
		return Workers()
	}
	return int(w)
}

// ParallelFor splits the half-open range [0, n) into at most Workers()
// contiguous chunks of at least grain elements and calls fn(lo, hi) for each,
// concurrently, returning when all calls have returned. With n <= grain or a
// single worker, fn runs on the calling goroutine. grain < 1 is treated as 1.
func ParallelFor(n, grain int, fn func(lo, hi int)) { Par(0).ParallelFor(n, grain, fn) }

// ParallelFor is the package's ParallelFor with at most w goroutines.
func (w Par) ParallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	k := w.count()
	if chunks := (n + grain - 1) / grain; chunks < k {
		k = chunks
	}
	if k <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(k - 1)
	for i := 1; i < k; i++ {
		lo, hi := i*n/k, (i+1)*n/k
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, n/k)
	wg.Wait()
}

// Each calls fn(i) for every i in [0, n) on up to Workers() goroutines,
// each taking the next i not yet taken, and returns when all calls have
// returned; a panic in a call is raised again on the caller's goroutine
// then. It is for work that falls into independent parts, such as the
// examples of a gradient-free batch: one part per core keeps each core's
// data in its own cache, where splitting every operation across the cores
// streams each intermediate through the shared cache or memory. The
// calls should run their kernels with Par(1).
func Each(n int, fn func(i int)) {
	w := min(Workers(), n)
	if w <= 1 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
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
// when all have returned. Like Each's, its calls should run their kernels
// with Par(1). A panic in a call is raised again on the caller's
// goroutine once all calls have returned; a call that fails must
// therefore release the others from any wait for it (tensor.Group.Abort).
func Together(n int, fn func(i int)) {
	if n <= 1 {
		if n == 1 {
			fn(0)
		}
		return
	}
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
