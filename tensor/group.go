package tensor

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Group connects the n replicas of a model that train on parts of one
// batch at the same time, one goroutine each (data-parallel training):
// their batch norms combine the statistics of the parts through it, so
// that every replica normalises with the statistics of the whole batch.
// Each replica has a rank 0..n-1; running statistics are updated by rank
// 0 alone (the replicas share them).
//
// Every member calls the group's collective operations the same number of
// times, in the same order, with vectors of the same length: the replicas
// run the same network, so forward passes meet at the same batch norms in
// the same order, and so do backward passes.
type Group struct {
	n       int
	mu      sync.Mutex
	cond    *sync.Cond
	parts   [][]float64
	arrived int
	gen     uint64
	result  []float64
	aborted error
	// genSeen is gen, readable without the lock.
	genSeen atomic.Uint64
	// spin is how long, in nanoseconds, a waiting member now spins
	// before it sleeps (adaptive: see spinFor).
	spin atomic.Int64
}

// A member waiting for the others spins, checking whether they have
// arrived, before it sleeps on the condition variable: a sleeping
// goroutine's core may go idle, and waking it again costs a futex call
// and, on a virtual machine, waking the halted vCPU (not timed directly
// here), at each of the 119 all-reduces of the cpu RealNVP's training
// step (counted: forward and backward batch norms).
// Measured on the 2-vCPU Intel machine (docs/perf.md, eighth session):
// the cpu RealNVP's data-parallel step went from 275 img/s (100 µs of
// spinning) to 289 (500 µs), 298 (2 ms) and 325 (10 ms), medians of 5
// alternating runs. The spin adapts: it halves (down to minSpin) each
// time the others do not come within it, as when more goroutines want
// to run than there are cores, and doubles (up to maxSpin) each time
// they do.
const (
	minSpin = 50 * time.Microsecond
	maxSpin = 10 * time.Millisecond
)

// ErrGroupAborted is the panic value of members waiting in a collective
// operation when another member aborts the group.
var ErrGroupAborted = errors.New("tensor: another member of the group failed")

// NewGroup returns a group of n members.
func NewGroup(n int) *Group {
	if n < 1 {
		panic(fmt.Sprintf("tensor: NewGroup(%d)", n))
	}
	g := &Group{n: n, parts: make([][]float64, n)}
	g.cond = sync.NewCond(&g.mu)
	g.spin.Store(int64(maxSpin))
	return g
}

// Size returns the number of members.
func (g *Group) Size() int { return g.n }

// AllSum replaces v, for every member, by the sum over the members of
// their v, added in rank order so that all members get the same values.
// It returns when every member has called it. It panics with
// ErrGroupAborted (or the reason) if the group is aborted, and aborts the
// group if the members' vectors differ in length.
func (g *Group) AllSum(rank int, v []float64) {
	if rank < 0 || rank >= g.n {
		panic(fmt.Sprintf("tensor: rank %d in a group of %d", rank, g.n))
	}
	if g.n == 1 {
		return
	}
	g.mu.Lock()
	if g.aborted != nil {
		g.mu.Unlock()
		panic(g.aborted)
	}
	gen := g.gen
	g.parts[rank] = v
	g.arrived++
	if g.arrived == g.n {
		sum := make([]float64, len(v))
		for r, p := range g.parts {
			if len(p) != len(v) {
				g.abortLocked(fmt.Errorf("tensor: group members out of step: rank %d sums %d values, rank %d %d", r, len(p), rank, len(v)))
				g.mu.Unlock()
				panic(g.aborted)
			}
			for i, x := range p {
				sum[i] += x
			}
		}
		clear(g.parts)
		g.result, g.arrived = sum, 0
		g.gen++
		g.genSeen.Store(g.gen)
		g.cond.Broadcast()
	} else {
		// The other members are usually moments away (they run the same
		// network on their own cores): spin briefly before sleeping,
		// which costs a futex wake-up each time.
		g.mu.Unlock()
		g.spinFor(gen)
		g.mu.Lock()
		for gen == g.gen && g.aborted == nil {
			g.cond.Wait()
		}
		if g.aborted != nil {
			g.mu.Unlock()
			panic(g.aborted)
		}
	}
	// The result stays until the next operation completes, which needs
	// this member too.
	copy(v, g.result)
	g.mu.Unlock()
}

// spinFor spins until the group's generation is no longer gen or the
// current spin time has passed, and adapts the spin time to the outcome.
// It does not spin when fewer goroutines than members can run at once
// (GOMAXPROCS): the member spinning would then hold the core that the
// last member needs.
func (g *Group) spinFor(gen uint64) {
	if runtime.GOMAXPROCS(0) < g.n {
		return
	}
	limit := time.Duration(g.spin.Load())
	start := time.Now()
	met := true
	for g.genSeen.Load() == gen {
		if time.Since(start) > limit {
			met = false
			break
		}
	}
	if next := nextSpin(limit, met); next != limit {
		g.spin.Store(int64(next))
	}
}

// nextSpin returns the spin time after a spin of limit: double when the
// others came within it (met), half otherwise, within [minSpin, maxSpin].
func nextSpin(limit time.Duration, met bool) time.Duration {
	if met {
		return min(2*limit, maxSpin)
	}
	return max(limit/2, minSpin)
}

// Abort wakes every member waiting in a collective operation, and makes
// this and later ones panic with ErrGroupAborted: a member that fails
// calls it so that the others do not wait for it forever.
func (g *Group) Abort() {
	g.mu.Lock()
	g.abortLocked(ErrGroupAborted)
	g.mu.Unlock()
}

// Reset makes an aborted group usable again. Call it only when no member
// is inside a collective operation (after all have returned).
func (g *Group) Reset() {
	g.mu.Lock()
	g.aborted, g.arrived = nil, 0
	clear(g.parts)
	g.mu.Unlock()
}

func (g *Group) abortLocked(err error) {
	if g.aborted == nil {
		g.aborted = err
	}
	g.genSeen.Add(1) // ends spinning
	g.cond.Broadcast()
}
