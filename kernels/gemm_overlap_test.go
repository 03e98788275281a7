package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// denseA materialises op(A) of an overlapping or implicit A as a plain
// m×k row-major matrix, for the float64 reference.
func denseA(m, k int, at func(i, p int) float32) []float32 {
	d := make([]float32, m*k)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			d[i*k+p] = at(i, p)
		}
	}
	return d
}

// checkAgainst runs call, which must compute C = alpha*A*op(B) + beta*C
// for the m×k matrix Ad (dense, row-major), and compares C with the
// float64 reference, including that the padding of C is untouched.
func checkAgainst(t *testing.T, rng *rand.Rand, what string, transB bool, m, n, k int, ad []float32, padB, padC int, alpha, beta float32,
	call func(b []float32, ldb int, c []float32, ldc int)) {
	t.Helper()
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	ldb, ldc := max(bc, 1)+padB, max(n, 1)+padC
	b := randSlice(rng, max(0, (br-1)*ldb+bc))
	c := randSlice(rng, max(0, (m-1)*ldc+n))
	for i := 0; i < m; i++ {
		for j := n; j < ldc && i*ldc+j < len(c); j++ {
			c[i*ldc+j] = sentinel
		}
		if beta == 0 {
			for j := 0; j < n; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	want, scale := refSgemm(false, transB, m, n, k, alpha, ad, max(k, 1), b, ldb, beta, c, ldc)
	call(b, ldb, c, ldc)
	tol := float64(k+4) * 1.2e-7
	for i := 0; i < m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(c); j++ {
			got := c[i*ldc+j]
			if j >= n {
				if got != sentinel {
					t.Fatalf("%s %s: m=%d n=%d k=%d: padding C[%d,%d] changed to %v", MicroKernel(), what, m, n, k, i, j, got)
				}
				continue
			}
			w, s := want[i*n+j], scale[i*n+j]
			if d := math.Abs(float64(got) - w); !(d <= tol*s+1e-30) {
				t.Fatalf("%s %s: tB=%v m=%d n=%d k=%d alpha=%v beta=%v: C[%d,%d] = %v, want %v (err %.3g, bound %.3g)",
					MicroKernel(), what, transB, m, n, k, alpha, beta, i, j, got, w, d, tol*s)
			}
		}
	}
}

// checkOverlapGemm checks SgemmOverlap with a stored A of leading
// dimension lda, which may be smaller than its row length.
func checkOverlapGemm(t *testing.T, rng *rand.Rand, transA, transB bool, m, n, k, lda, padB, padC int, alpha, beta float32) {
	t.Helper()
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	a := randSlice(rng, max(0, (ar-1)*lda+ac))
	ad := denseA(m, k, func(i, p int) float32 {
		if transA {
			return a[p*lda+i]
		}
		return a[i*lda+p]
	})
	what := "SgemmOverlap tA=" + map[bool]string{false: "N", true: "T"}[transA] + " lda=" + itoa(lda)
	checkAgainst(t, rng, what, transB, m, n, k, ad, padB, padC, alpha, beta, func(b []float32, ldb int, c []float32, ldc int) {
		SgemmOverlap(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

// checkImplicitGemm checks SgemmImplicit with nseg segments of segK
// columns at random, possibly overlapping, offsets.
func checkImplicitGemm(t *testing.T, rng *rand.Rand, transB bool, m, n, segK, nseg, lda, padB, padC int, alpha, beta float32) {
	t.Helper()
	checkImplicitGemmOffs(t, rng, transB, m, n, segK, nseg, lda, padB, padC, alpha, beta, false)
}

// checkImplicitGemmOffs is checkImplicitGemm with, when uniform is set,
// equally spaced segments (as a convolution's kernel rows are), which the
// micro-kernels' segmented loops take whole.
func checkImplicitGemmOffs(t *testing.T, rng *rand.Rand, transB bool, m, n, segK, nseg, lda, padB, padC int, alpha, beta float32, uniform bool) {
	t.Helper()
	span := max(0, (m-1)*lda+segK)
	size := span + rng.IntN(3*span+10)
	a := randSlice(rng, size)
	offs := make([]int, nseg)
	for s := range offs {
		offs[s] = rng.IntN(size - span + 1)
	}
	if uniform && nseg > 1 {
		step := rng.IntN((size-span)/(nseg-1) + 1)
		offs[0] = rng.IntN(size - span - (nseg-1)*step + 1)
		for s := 1; s < nseg; s++ {
			offs[s] = offs[s-1] + step
		}
	}
	k := segK * nseg
	ad := denseA(m, k, func(i, p int) float32 { return a[offs[p/segK]+i*lda+p%segK] })
	what := "SgemmImplicit segK=" + itoa(segK) + " segs=" + itoa(nseg) + " lda=" + itoa(lda)
	checkAgainst(t, rng, what, transB, m, n, k, ad, padB, padC, alpha, beta, func(b []float32, ldb int, c []float32, ldc int) {
		SgemmImplicit(transB, m, n, segK, offs, alpha, a, lda, b, ldb, beta, c, ldc)
	})
}

func itoa(v int) string {
	if v < 0 {
		return "-" + itoa(-v)
	}
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

// TestSgemmOverlapOddSizes checks overlapping A (lda from 1 to past the
// row length) on small odd shapes through the blocked path, with every
// micro-kernel, for all transpose combinations.
func TestSgemmOverlapOddSizes(t *testing.T) {
	forceBlocked(t)
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(21, 22))
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for it := 0; it < 30; it++ {
					m := oddSizes[rng.IntN(len(oddSizes))]
					n := oddSizes[rng.IntN(len(oddSizes))]
					k := oddSizes[rng.IntN(len(oddSizes))]
					cols := k
					if tA {
						cols = m
					}
					lda := 1 + rng.IntN(cols+2)
					alpha := []float32{1, -1, 0.5}[rng.IntN(3)]
					beta := []float32{0, 1, -0.75}[rng.IntN(3)]
					checkOverlapGemm(t, rng, tA, tB, m, n, k, lda, rng.IntN(2)*3, rng.IntN(2)*5, alpha, beta)
				}
			}
		}
	})
}

// TestSgemmOverlapBlocking uses overlapping A on shapes that take the
// parallel, split-k, several-k-block, packed and in-place paths, with
// more workers than cores: the convolution shapes (lda = Cin, k = 3*Cin)
// and the weight-gradient TN shapes (long k).
func TestSgemmOverlapBlocking(t *testing.T) {
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)
	type shape struct {
		tA      bool
		m, n, k int
		lda     int
	}
	shapes := []shape{
		{false, 1000, 16, 48, 16},  // forward conv, Cin 16, one kernel row
		{false, 900, 32, 96, 32},   // Cin 32
		{false, 700, 200, 300, 7},  // wide output: A packed, then in place
		{false, 300, 70, 1700, 50}, // several k blocks
		{false, 9, 5, 4100, 3},     // split k
		{true, 48, 16, 3000, 16},   // weight gradient, Cin 16
		{true, 96, 32, 2500, 32},   // weight gradient, Cin 32
		{true, 30, 64, 3300, 10},   // split k with full tiles
		{true, 150, 45, 1100, 100}, // several k blocks
	}
	if raceEnabled || testing.Short() {
		shapes = []shape{{false, 300, 70, 600, 50}, {true, 48, 16, 3000, 16}, {false, 9, 5, 4100, 3}}
	}
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(23, 24))
		for _, s := range shapes {
			for _, tB := range []bool{false, true} {
				beta := []float32{0, 1, 0.5}[rng.IntN(3)]
				checkOverlapGemm(t, rng, s.tA, tB, s.m, s.n, s.k, s.lda, rng.IntN(2)*3, rng.IntN(2)*2, 1.5, beta)
			}
		}
	})
}

// TestSgemmImplicit checks implicit A on segment lengths from 1 to past
// the packed and in-place k blocks (256 and 768), through the small and
// blocked paths, with every micro-kernel and more workers than cores.
func TestSgemmImplicit(t *testing.T) {
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)
	type shape struct{ m, n, segK, nseg, lda int }
	shapes := []shape{
		{1, 1, 1, 1, 1},
		{5, 3, 2, 3, 1},
		{33, 17, 13, 3, 5},
		{65, 16, 48, 3, 16}, // 3x3 conv, Cin 16
		{129, 33, 9, 5, 3},  // 5x5 conv, Cin 3 (k blocks of 15)
		{1000, 16, 48, 3, 16},
		{600, 32, 96, 3, 32},
		{400, 64, 192, 3, 64},
		{300, 200, 150, 2, 20}, // wide output
		{200, 40, 300, 3, 7},   // segments longer than a packed k block
		{120, 24, 800, 2, 100}, // longer than an in-place k block
		{9, 5, 700, 6, 4},      // split k across segments
	}
	if raceEnabled || testing.Short() {
		shapes = shapes[:6]
	}
	for _, blocked := range []bool{false, true} {
		t.Run(map[bool]string{false: "auto", true: "blocked"}[blocked], func(t *testing.T) {
			if blocked {
				forceBlocked(t)
			}
			forEachKernel(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(25, 26))
				for _, s := range shapes {
					for _, tB := range []bool{false, true} {
						beta := []float32{0, 1, -0.5}[rng.IntN(3)]
						checkImplicitGemm(t, rng, tB, s.m, s.n, s.segK, s.nseg, s.lda, rng.IntN(2)*3, rng.IntN(2)*2, 0.75, beta)
					}
				}
			})
		})
	}
}

// TestSgemmImplicitUniform checks implicit A with equally spaced
// segments, which the micro-kernels' segmented loops take whole: the
// convolution shapes of the st-networks' first layers, bottom-edge
// slivers, partial and several column slivers, segments shorter than the
// k loop's unrolling, through the small and blocked paths.
func TestSgemmImplicitUniform(t *testing.T) {
	var fused atomic.Int64
	testSegFused = func() { fused.Add(1) }
	defer func() { testSegFused = nil }()
	type shape struct{ m, n, segK, nseg, lda int }
	shapes := []shape{
		{870, 16, 6, 3, 2},   // 28x28 padded grid, Cin 2 -> 16
		{1000, 32, 12, 3, 4}, // Cin 4 -> 32
		{57, 16, 6, 3, 2},    // bottom-edge sliver
		{100, 8, 3, 3, 1},    // 28x8 tiles
		{90, 45, 9, 5, 3},    // several and partial column slivers, 5x5
		{64, 33, 1, 7, 1},    // one-column segments
		{200, 20, 5, 2, 5},   // a partial 16-column sliver
	}
	for _, blocked := range []bool{false, true} {
		t.Run(map[bool]string{false: "auto", true: "blocked"}[blocked], func(t *testing.T) {
			if blocked {
				forceBlocked(t)
			}
			forEachKernel(t, func(t *testing.T) {
				before := fused.Load()
				rng := rand.New(rand.NewPCG(29, 30))
				for _, s := range shapes {
					for _, tB := range []bool{false, true} {
						beta := []float32{0, 1, -0.5}[rng.IntN(3)]
						alpha := []float32{1, 0.75}[rng.IntN(2)]
						checkImplicitGemmOffs(t, rng, tB, s.m, s.n, s.segK, s.nseg, s.lda, rng.IntN(2)*3, rng.IntN(2)*2, alpha, beta, true)
					}
				}
				if activeKernel().segLoop != nil && fused.Load() == before {
					t.Error("no product took the segmented micro-kernel loop")
				}
			})
		})
	}
}

// TestSgemmImplicitOuterK shrinks the packed-B budget so that B is packed
// in several outer k ranges that cut across segments.
func TestSgemmImplicitOuterK(t *testing.T) {
	old := maxPackedB
	maxPackedB = 4096
	defer func() { maxPackedB = old }()
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(27, 28))
		for _, tB := range []bool{false, true} {
			checkImplicitGemm(t, rng, tB, 150, 45, 170, 5, 11, 1, 2, -1, 0.25)
			checkOverlapGemm(t, rng, true, tB, 150, 45, 1100, 40, 1, 2, -1, 0.25)
		}
	})
}

// TestSgemmOverlapPanics checks that the relaxed leading dimension still
// rejects slices too short for the rows they must hold.
func TestSgemmOverlapPanics(t *testing.T) {
	a := make([]float32, 20)
	b := make([]float32, 40)
	c := make([]float32, 40)
	cases := []struct {
		name string
		f    func()
	}{
		{"zero lda", func() { SgemmOverlap(false, false, 3, 3, 4, 1, a, 0, b, 3, 0, c, 3) }},
		// 4 rows of 8 columns, 4 apart, need 3*4+8 = 20 elements.
		{"short a", func() { SgemmOverlap(false, false, 4, 3, 8, 1, a[:19], 4, b, 3, 0, c, 3) }},
		{"short a transA", func() { SgemmOverlap(true, false, 8, 3, 4, 1, a[:19], 4, b, 3, 0, c, 3) }},
		{"small ldb", func() { SgemmOverlap(false, false, 4, 3, 8, 1, a, 4, b, 2, 0, c, 3) }},
		{"negative m", func() { SgemmOverlap(false, false, -1, 3, 8, 1, a, 4, b, 3, 0, c, 3) }},
		{"implicit zero lda", func() { SgemmImplicit(false, 3, 3, 2, []int{0}, 1, a, 0, b, 3, 0, c, 3) }},
		{"implicit negative segK", func() { SgemmImplicit(false, 3, 3, -2, []int{0}, 1, a, 1, b, 3, 0, c, 3) }},
		{"implicit negative offset", func() { SgemmImplicit(false, 3, 3, 2, []int{0, -1}, 1, a, 1, b, 3, 0, c, 3) }},
		// 4 rows of 6 columns, 3 apart, span 15: offset 6 needs 21.
		{"implicit offset too far", func() { SgemmImplicit(false, 4, 3, 6, []int{0, 6}, 1, a, 3, b, 3, 0, c, 3) }},
		{"implicit offset past end", func() { SgemmImplicit(false, 1, 1, 1, []int{21}, 1, a, 1, b, 1, 0, c, 1) }},
		{"implicit short b", func() { SgemmImplicit(false, 4, 3, 6, []int{0, 5}, 1, a, 3, b[:35], 3, 0, c, 3) }},
		{"implicit short c", func() { SgemmImplicit(false, 4, 3, 6, []int{0, 5}, 1, a, 3, b, 3, 0, c[:11], 3) }},
	}
	for _, tc := range cases {
		func() {
			defer func() {
				r := recover()
				s, ok := r.(string)
				if !ok || !strings.HasPrefix(s, "kernels: ") {
					t.Errorf("%s: recovered %v, want a kernels: panic", tc.name, r)
				}
			}()
			tc.f()
		}()
	}
	// The longest allowed slices are accepted.
	SgemmOverlap(false, false, 4, 3, 8, 1, a, 4, b, 3, 0, c, 3)
	SgemmImplicit(false, 4, 3, 6, []int{0, 5}, 1, a, 3, b, 3, 0, c, 3)
}
