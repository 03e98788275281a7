package tensor

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/flowood/flowood/kernels"
)

// TestGroupAllSum checks the sums every member receives, over several
// rounds, and that vectors of different lengths abort the group.
func TestGroupAllSum(t *testing.T) {
	const n, rounds = 3, 50
	g := NewGroup(n)
	got := make([][]float64, n)
	kernels.Together(n, func(r int) {
		for k := 0; k < rounds; k++ {
			v := []float64{float64(r), float64(k * r), 1}
			g.AllSum(r, v)
			got[r] = append(got[r], v...)
		}
	})
	for r := range got {
		for k := 0; k < rounds; k++ {
			want := []float64{0 + 1 + 2, float64(k * 3), n}
			for i, w := range want {
				if got[r][3*k+i] != w {
					t.Fatalf("rank %d round %d: sum[%d] = %v, want %v", r, k, i, got[r][3*k+i], w)
				}
			}
		}
	}

	g = NewGroup(2)
	panics := make([]any, 2)
	kernels.Together(2, func(r int) {
		defer func() { panics[r] = recover() }()
		g.AllSum(r, make([]float64, 2+r))
	})
	for r, p := range panics {
		if p == nil {
			t.Errorf("rank %d: vectors of lengths 2 and 3 were summed", r)
		}
	}

	// A member that fails aborts the group: the waiting one is released.
	g = NewGroup(2)
	kernels.Together(2, func(r int) {
		defer func() { panics[r] = recover() }()
		if r == 1 {
			g.Abort()
			return
		}
		g.AllSum(r, make([]float64, 1))
	})
	if err, _ := panics[0].(error); !errors.Is(err, ErrGroupAborted) {
		t.Errorf("waiting member got %v, want ErrGroupAborted", panics[0])
	}
}

// TestGroupSpin checks the waiting member's spin time: it halves when
// the others come later than the spin lasts and doubles when they come
// within it, between minSpin and maxSpin; in a group, members that arrive
// late or at once get the right sums, the spin time stays within its
// bounds, and with GOMAXPROCS 1 no member spins (the spin time does not
// move). Whether a given wait ends within the spin depends on the
// machine's load, so the group part asserts no particular spin time.
func TestGroupSpin(t *testing.T) {
	for _, c := range []struct {
		limit time.Duration
		met   bool
		want  time.Duration
	}{
		{maxSpin, true, maxSpin},
		{maxSpin, false, maxSpin / 2},
		{minSpin, false, minSpin},
		{minSpin, true, 2 * minSpin},
		{maxSpin/2 + 1, true, maxSpin},
		{minSpin + 1, false, minSpin},
	} {
		if got := nextSpin(c.limit, c.met); got != c.want {
			t.Errorf("nextSpin(%v, %v) = %v, want %v", c.limit, c.met, got, c.want)
		}
	}
	// From the shortest spin, 8 waits that end within it bring it back
	// to the longest.
	s := minSpin
	for i := 0; i < 8; i++ {
		s = nextSpin(s, true)
	}
	if s != maxSpin {
		t.Errorf("8 doublings from %v give %v, want %v", minSpin, s, maxSpin)
	}

	g := NewGroup(2)
	if got := time.Duration(g.spin.Load()); got != maxSpin {
		t.Fatalf("new group spins %v, want %v", got, maxSpin)
	}
	round := func(late time.Duration) {
		kernels.Together(2, func(r int) {
			if r == 1 {
				time.Sleep(late)
			}
			v := []float64{float64(r + 1)}
			g.AllSum(r, v)
			if v[0] != 3 {
				t.Errorf("rank %d: sum %v, want 3", r, v[0])
			}
		})
	}
	for _, late := range []time.Duration{0, 3 * maxSpin, 0, time.Millisecond, 0} {
		round(late)
		if got := time.Duration(g.spin.Load()); got < minSpin || got > maxSpin {
			t.Fatalf("spin %v outside [%v, %v]", got, minSpin, maxSpin)
		}
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	before := g.spin.Load()
	round(3 * maxSpin)
	if g.spin.Load() != before {
		t.Errorf("GOMAXPROCS 1: the spin time changed, so a member spun")
	}
}

// TestBatchNormGroup checks synchronised batch norm: a batch split into
// parts normalised by the members of a group, each running forward and
// backward on its part, gives the outputs, input gradients and running
// statistics of the whole batch, and gamma's and beta's gradients summed
// over the members.
func TestBatchNormGroup(t *testing.T) {
	rng := gcRNG(30)
	for _, tc := range []struct {
		parts []int
		relu  bool
	}{{[]int{2, 2}, true}, {[]int{4, 3, 3}, false}, {[]int{1, 5}, true}} {
		shape := []int{0, 3, 3, 5}
		for _, p := range tc.parts {
			shape[0] += p
		}
		ch := shape[3]
		x0 := normal(rng, 0.5, 1.5, shape...)
		g0 := uniform(rng, 0.5, 1.5, ch)
		b0 := normal(rng, 0, 1, ch)
		w := normal(rng, 0, 1, shape...)
		bn := BatchNorm
		if tc.relu {
			bn = BatchNormReLU
		}
		per := len(x0.Data) / shape[0]
		// The whole batch at once.
		x, gamma, beta := param(x0.Clone()), param(g0.Clone()), param(b0.Clone())
		st := &BatchNormStats{Mean: make([]float32, ch), Var: make([]float32, ch), Momentum: 0.1, Eps: 1e-5}
		y := bn(Tanh(x), gamma, beta, st, true)
		wantY := append([]float32(nil), y.Data...)
		Backward(Sum(Mul(y, w)))
		// The parts, one member each.
		k := len(tc.parts)
		group := NewGroup(k)
		gotY := make([]float32, len(x0.Data))
		gotGX := make([]float32, len(x0.Data))
		gg, gb := make([]float32, ch), make([]float32, ch)
		stg := &BatchNormStats{Mean: make([]float32, ch), Var: make([]float32, ch), Momentum: 0.1, Eps: 1e-5, Group: group}
		offs := []int{0}
		for _, p := range tc.parts {
			offs = append(offs, offs[len(offs)-1]+p)
		}
		grads := make([][2][]float32, k)
		kernels.Together(k, func(r int) {
			lo, hi := offs[r]*per, offs[r+1]*per
			xr := param(FromData(append([]float32(nil), x0.Data[lo:hi]...), append([]int{tc.parts[r]}, shape[1:]...)...))
			gr, br := param(g0.Clone()), param(b0.Clone())
			s := *stg
			s.Rank = r
			yr := bn(Tanh(xr), gr, br, &s, true)
			copy(gotY[lo:hi], yr.Data)
			wr := FromData(w.Data[lo:hi], yr.Shape...)
			Backward(Sum(Mul(yr, wr)))
			copy(gotGX[lo:hi], xr.Grad)
			grads[r] = [2][]float32{gr.Grad, br.Grad}
		})
		for r := range grads {
			for j := 0; j < ch; j++ {
				gg[j] += grads[r][0][j]
				gb[j] += grads[r][1][j]
			}
		}
		name := fmt.Sprintf("parts %v relu %v", tc.parts, tc.relu)
		for _, c := range []struct {
			what     string
			got, ref []float32
		}{{"output", gotY, wantY}, {"dL/dx", gotGX, x.Grad}, {"dL/dgamma", gg, gamma.Grad}, {"dL/dbeta", gb, beta.Grad},
			{"running mean", stg.Mean, st.Mean}, {"running variance", stg.Var, st.Var}} {
			for i := range c.ref {
				if d := math.Abs(float64(c.got[i] - c.ref[i])); d > 1e-5*(1+math.Abs(float64(c.ref[i]))) {
					t.Errorf("%s: %s[%d] = %v, whole batch %v", name, c.what, i, c.got[i], c.ref[i])
					break
				}
			}
		}
	}
}
