package tensor

import (
	"errors"
	"fmt"
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
}

// spinWait is how long a member waiting for the others spins before it
// sleeps.
const spinWait = 100 * time.Microsecond

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
		for deadline := time.Now().Add(spinWait); g.genSeen.Load() == gen && time.Now().Before(deadline); {
		}
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
