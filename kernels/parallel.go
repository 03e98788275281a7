package kernels

import (
	"runtime"
	"sync"
)

// Workers returns the number of goroutines the kernels split work across:
// GOMAXPROCS at the time of the call.
func Workers() int { return runtime.GOMAXPROCS(0) }

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
