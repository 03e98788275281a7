package kernels

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// refSgemm computes alpha*op(A)*op(B) + beta*C0 in float64, together with
// the error scale sum |alpha·a·b| + |beta·c| for every element of C.
func refSgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) (want, scale []float64) {
	want = make([]float64, m*n)
	scale = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for p := 0; p < k; p++ {
				var av, bv float64
				if transA {
					av = float64(a[p*lda+i])
				} else {
					av = float64(a[i*lda+p])
				}
				if transB {
					bv = float64(b[j*ldb+p])
				} else {
					bv = float64(b[p*ldb+j])
				}
				s += av * bv
				abs += math.Abs(av * bv)
			}
			s *= float64(alpha)
			abs *= math.Abs(float64(alpha))
			if beta != 0 {
				cv := float64(c[i*ldc+j])
				s += float64(beta) * cv
				abs += math.Abs(float64(beta) * cv)
			}
			want[i*n+j] = s
			scale[i*n+j] = abs
		}
	}
	return want, scale
}

// randSlice returns n standard normal float32s.
func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64())
	}
	return s
}

// sentinel fills the padding of C, which Sgemm must not touch.
const sentinel = float32(-12345.5)

// checkSgemm runs one Sgemm call against the float64 reference. Padding
// entries of C beyond n in each row must be left untouched.
func checkSgemm(t *testing.T, rng *rand.Rand, transA, transB bool, m, n, k, padA, padB, padC int, alpha, beta float32) {
	t.Helper()
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	lda, ldb, ldc := max(ac, 1)+padA, max(bc, 1)+padB, max(n, 1)+padC
	a := randSlice(rng, max(0, (ar-1)*lda+ac))
	for range aSlack {
		a = append(a, float32(math.NaN()))
	}
	b := randSlice(rng, max(0, (br-1)*ldb+bc))
	c := randSlice(rng, max(0, (m-1)*ldc+n))
	for i := 0; i < m; i++ {
		for j := n; j < ldc && i*ldc+j < len(c); j++ {
			c[i*ldc+j] = sentinel
		}
	}
	if beta == 0 {
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				c[i*ldc+j] = float32(math.NaN())
			}
		}
	}
	want, scale := refSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	sgemmUnderTest(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	tol := float64(k+4) * 1.2e-7
	for i := 0; i < m; i++ {
		for j := 0; j < ldc && i*ldc+j < len(c); j++ {
			got := c[i*ldc+j]
			if j >= n {
				if got != sentinel {
					t.Fatalf("%s: tA=%v tB=%v m=%d n=%d k=%d: padding C[%d,%d] changed to %v", MicroKernel(), transA, transB, m, n, k, i, j, got)
				}
				continue
			}
			w, s := want[i*n+j], scale[i*n+j]
			if d := math.Abs(float64(got) - w); !(d <= tol*s+1e-30) {
				t.Fatalf("%s: tA=%v tB=%v m=%d n=%d k=%d alpha=%v beta=%v lda=%d ldb=%d ldc=%d: C[%d,%d] = %v, want %v (err %.3g, bound %.3g)",
					MicroKernel(), transA, transB, m, n, k, alpha, beta, lda, ldb, ldc, i, j, got, w, d, tol*s)
			}
		}
	}
}

// sgemmUnderTest is the entry point checkSgemm calls: Sgemm, or a
// variant a test swaps in.
var sgemmUnderTest = Sgemm

// TestSgemmSerial checks SgemmSerial, the single-goroutine entry point,
// on shapes that would otherwise take the parallel and split-k paths.
func TestSgemmSerial(t *testing.T) {
	sgemmUnderTest = SgemmSerial
	defer func() { sgemmUnderTest = Sgemm }()
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(7, 8))
		for _, s := range [][3]int{{37, 600, 290}, {9, 5, 4100}, {112, 32, 32}, {112, 16, 16}, {32, 32, 112}} {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					beta := []float32{0, 1, 0.5}[rng.IntN(3)]
					checkSgemm(t, rng, tA, tB, s[0], s[1], s[2], rng.IntN(2)*3, rng.IntN(2)*5, rng.IntN(2)*2, 1.5, beta)
				}
			}
		}
	})
}

// TestSgemmStridedSerial checks SgemmStridedSerial: the last of three
// strided products against the float64 reference (through checkSgemm),
// the others bit for bit against SgemmSerial on the same operands, and
// the gaps between the C_i untouched.
func TestSgemmStridedSerial(t *testing.T) {
	const count = 3
	rng := rand.New(rand.NewPCG(9, 10))
	sgemmUnderTest = func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
		sa, sb, sc := len(a)+5, len(b)+3, len(c)+7
		as, bs, cs := randSlice(rng, count*sa), randSlice(rng, count*sb), randSlice(rng, count*sc)
		copy(as[(count-1)*sa:], a)
		copy(bs[(count-1)*sb:], b)
		copy(cs[(count-1)*sc:], c)
		want := append([]float32(nil), cs...)
		for i := range count - 1 {
			SgemmSerial(transA, transB, m, n, k, alpha, as[i*sa:], lda, bs[i*sb:], ldb, beta, want[i*sc:], ldc)
		}
		SgemmStridedSerial(count, transA, transB, m, n, k, alpha, as, lda, sa, bs, ldb, sb, beta, cs, ldc, sc)
		checkSame(t, "SgemmStridedSerial C_i, i < last, and gaps", cs[:(count-1)*sc], want[:(count-1)*sc])
		copy(c, cs[(count-1)*sc:])
	}
	defer func() { sgemmUnderTest = Sgemm }()
	forEachKernel(t, func(t *testing.T) {
		for _, s := range [][3]int{{37, 60, 29}, {2, 3, 4}, {112, 32, 32}, {112, 16, 16}, {32, 32, 112}, {0, 5, 5}, {5, 5, 0}} {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					beta := []float32{0, 1, 0.5}[rng.IntN(3)]
					checkSgemm(t, rng, tA, tB, s[0], s[1], s[2], rng.IntN(2)*3, rng.IntN(2)*5, rng.IntN(2)*2, 1.5, beta)
				}
			}
		}
	})
	for _, bad := range []func(){
		func() { SgemmStridedSerial(-1, false, false, 2, 2, 2, 1, nil, 2, 0, nil, 2, 0, 0, nil, 2, 0) },
		func() {
			SgemmStridedSerial(2, false, false, 2, 2, 2, 1, make([]float32, 4), 2, 4, make([]float32, 8), 2, 4, 0, make([]float32, 8), 2, 4)
		},
		func() { // the last C starts beyond the slice
			SgemmStridedSerial(3, false, false, 2, 2, 2, 1, make([]float32, 12), 2, 4, make([]float32, 12), 2, 4, 0, make([]float32, 12), 2, 7)
		},
		func() { // a stride whose product with count overflows
			SgemmStridedSerial(3, false, false, 2, 2, 2, 1, make([]float32, 12), 2, 4, make([]float32, 12), 2, math.MaxInt/2+1, 0, make([]float32, 12), 2, 4)
		},
	} {
		func() {
			defer func() {
				if r := recover(); r == nil {
					t.Error("SgemmStridedSerial accepted bad operands")
				}
			}()
			bad()
		}()
	}
}

// forEachKernel runs f once with every micro-kernel available here.
func forEachKernel(t *testing.T, f func(t *testing.T)) {
	defer SetMicroKernel("auto")
	for _, name := range MicroKernels() {
		if !SetMicroKernel(name) {
			t.Fatalf("SetMicroKernel(%q) failed", name)
		}
		t.Run(name, f)
	}
}

// forceBlocked makes Sgemm take the blocked path even for tiny shapes.
func forceBlocked(t *testing.T) {
	old := smallGemm
	smallGemm = 0
	t.Cleanup(func() { smallGemm = old })
}

// oddSizes are the dimensions TestSgemmOddSizes draws from: around and
// between the register tile sizes.
var oddSizes = []int{1, 2, 3, 7, 13, 17, 33, 65, 129}

// TestSgemmOddSizes checks all transpose combinations, alpha and beta
// values and padded leading dimensions on small odd shapes, through the
// blocked path, with every micro-kernel.
func TestSgemmOddSizes(t *testing.T) {
	forceBlocked(t)
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for it := 0; it < 40; it++ {
					m := oddSizes[rng.IntN(len(oddSizes))]
					n := oddSizes[rng.IntN(len(oddSizes))]
					k := oddSizes[rng.IntN(len(oddSizes))]
					alpha := []float32{1, -1, 0.5, 2.25}[rng.IntN(4)]
					beta := []float32{0, 1, -0.75, 0.5}[rng.IntN(4)]
					checkSgemm(t, rng, tA, tB, m, n, k, rng.IntN(3)*5, rng.IntN(3)*3, rng.IntN(3)*7, alpha, beta)
				}
			}
		}
	})
}

// TestSgemmBlocking uses shapes larger than one cache block in every
// dimension, and ones that take the split-k and column-group parallel
// paths, with more workers than cores.
func TestSgemmBlocking(t *testing.T) {
	old := runtime.GOMAXPROCS(3)
	defer runtime.GOMAXPROCS(old)
	shapes := [][3]int{
		{300, 70, 530},  // several k blocks, row blocks, edges
		{37, 600, 290},  // few row blocks: column groups; n > nc for generic
		{9, 5, 4100},    // split k
		{30, 64, 3300},  // split k with full tiles
		{513, 33, 17},   // many row blocks, short k
		{1000, 16, 144}, // small-channel conv shape
		{90, 128, 576},  // conv-like
		{120, 40, 1700}, // several k blocks when A is read in place
		{40, 150, 1024}, // wide output, lda a multiple of 1024: A packed
	}
	if raceEnabled || testing.Short() {
		// Keep the shapes that exercise the parallel paths.
		shapes = [][3]int{{37, 600, 290}, {9, 5, 4100}, {513, 33, 17}}
	}
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		for _, s := range shapes {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					beta := []float32{0, 1, 0.5}[rng.IntN(3)]
					checkSgemm(t, rng, tA, tB, s[0], s[1], s[2], rng.IntN(2)*3, rng.IntN(2)*5, rng.IntN(2)*2, 1.5, beta)
				}
			}
		}
	})
}

// TestSgemmTransposed checks the shapes computed transposed (few rows of
// C, many columns: gemmProblem.swap), each way of storing A and B, with
// and without beta, against the float64 reference; and that the shapes
// named do take that path.
func TestSgemmTransposed(t *testing.T) {
	shapes := [][3]int{
		{8, 100, 12544}, // the App. K bottleneck's down projection, 8 images
		{16, 1000, 100}, // its up projection, 16 images (shortened)
		{1, 300, 700},   // one row
		{5, 64, 1100},   // the fewest columns swapped
		{16, 130, 600},  // 16 rows, columns not a multiple of any tile
	}
	for _, s := range shapes {
		g := gemmProblem{m: s[0], n: s[1], k: s[2]}
		if !g.swap() {
			t.Fatalf("%v is not computed transposed", s)
		}
	}
	if (&gemmProblem{m: 17, n: 1000, k: 1000}).swap() || (&gemmProblem{m: 16, n: 63, k: 6000}).swap() || (&gemmProblem{m: 8, n: 100, k: 600}).swap() {
		t.Fatal("shapes outside the rule are computed transposed")
	}
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(5, 6))
		for _, s := range shapes {
			for _, tA := range []bool{false, true} {
				for _, tB := range []bool{false, true} {
					beta := []float32{0, 1, -0.5}[rng.IntN(3)]
					checkSgemm(t, rng, tA, tB, s[0], s[1], s[2], rng.IntN(2)*3, rng.IntN(2)*5, rng.IntN(2)*2, 0.75, beta)
				}
			}
		}
	})
}

// TestSgemmBInPlace checks products whose B is exactly one micro-kernel
// sliver wide and unpadded, which the blocked path reads in place instead
// of packing, for every kernel and its variants, with several k
// blocks and an implicit A.
func TestSgemmBInPlace(t *testing.T) {
	forceBlocked(t)
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(9, 10))
		for _, kn := range activeKernel().variants() {
			for _, mk := range [][2]int{{1, 1}, {37, 9}, {300, 530}, {120, 1700}} {
				for _, tA := range []bool{false, true} {
					checkSgemm(t, rng, tA, false, mk[0], kn.nr, mk[1], rng.IntN(2)*3, 0, rng.IntN(2)*2, 1.5, []float32{0, 1}[rng.IntN(2)])
				}
			}
		}
	})
}

// aSlack is the number of NaNs checkSgemm appends to A, past the matrix.
var aSlack = 0

// TestSgemmEdgeInPlace gives A a tail of NaNs past the matrix, so that the
// bottom-edge slivers of the blocked path are read in place rather than
// packed: the NaNs read into the dropped rows must not reach C.
func TestSgemmEdgeInPlace(t *testing.T) {
	forceBlocked(t)
	aSlack = 64 * 40
	var inPlace atomic.Int64
	testEdgeInPlace = func() { inPlace.Add(1) }
	defer func() { aSlack, testEdgeInPlace = 0, nil }()
	forEachKernel(t, func(t *testing.T) {
		before := inPlace.Load()
		defer func() {
			// Kernels that read A in place must have done so at the edges.
			if activeKernel().direct && inPlace.Load() == before && !t.Failed() {
				t.Error("no bottom-edge sliver was read in place")
			}
		}()
		rng := rand.New(rand.NewPCG(11, 12))
		for _, m := range []int{1, 5, 13, 15, 17, 30, 32, 45} {
			for _, n := range []int{7, 16, 32} {
				for _, k := range []int{9, 300} {
					for _, tA := range []bool{false, true} {
						checkSgemm(t, rng, tA, false, m, n, k, rng.IntN(2)*3, 0, 0, 1, []float32{0, 1}[rng.IntN(2)])
					}
				}
			}
		}
	})
}

// TestSgemmSmallPath checks the direct loop used for tiny products.
func TestSgemmSmallPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tA := range []bool{false, true} {
		for _, tB := range []bool{false, true} {
			for it := 0; it < 20; it++ {
				m, n, k := 1+rng.IntN(12), 1+rng.IntN(12), 1+rng.IntN(12)
				beta := []float32{0, 1, 2}[rng.IntN(3)]
				checkSgemm(t, rng, tA, tB, m, n, k, rng.IntN(2), rng.IntN(2), rng.IntN(2), 0.75, beta)
			}
		}
	}
}

// TestSgemmDegenerate checks k = 0, alpha = 0 and empty outputs.
func TestSgemmDegenerate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	// k = 0 and alpha = 0 reduce to scaling C; beta = 0 must clear NaNs.
	for _, k := range []int{0, 5} {
		for _, beta := range []float32{0, 1, 3} {
			alpha := float32(0)
			if k == 0 {
				alpha = 1
			}
			checkSgemm(t, rng, false, false, 4, 6, k, 0, 0, 2, alpha, beta)
		}
	}
	// Empty outputs do nothing.
	Sgemm(false, false, 0, 5, 3, 1, nil, 3, make([]float32, 15), 5, 0, nil, 5)
	Sgemm(false, false, 5, 0, 3, 1, make([]float32, 15), 3, nil, 1, 0, nil, 1)
}

// TestSgemmPanics checks that bad arguments panic with a kernels: message.
func TestSgemmPanics(t *testing.T) {
	a := make([]float32, 12)
	b := make([]float32, 12)
	c := make([]float32, 9)
	cases := []struct {
		name string
		f    func()
	}{
		{"negative m", func() { Sgemm(false, false, -1, 3, 4, 1, a, 4, b, 3, 0, c, 3) }},
		{"negative n", func() { Sgemm(false, false, 3, -1, 4, 1, a, 4, b, 3, 0, c, 3) }},
		{"negative k", func() { Sgemm(false, false, 3, 3, -1, 1, a, 4, b, 3, 0, c, 3) }},
		{"small lda", func() { Sgemm(false, false, 3, 3, 4, 1, a, 3, b, 3, 0, c, 3) }},
		{"small lda transA", func() { Sgemm(true, false, 3, 3, 4, 1, a, 2, b, 3, 0, c, 3) }},
		{"small ldb", func() { Sgemm(false, false, 3, 3, 4, 1, a, 4, b, 2, 0, c, 3) }},
		{"small ldb transB", func() { Sgemm(false, true, 3, 3, 4, 1, a, 4, b, 3, 0, c, 3) }},
		{"small ldc", func() { Sgemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c, 2) }},
		{"short a", func() { Sgemm(false, false, 3, 3, 4, 1, a[:11], 4, b, 3, 0, c, 3) }},
		{"short b", func() { Sgemm(false, false, 3, 3, 4, 1, a, 4, b[:11], 3, 0, c, 3) }},
		{"short c", func() { Sgemm(false, false, 3, 3, 4, 1, a, 4, b, 3, 0, c[:8], 3) }},
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
}

// TestMicroKernelSelection checks MicroKernels, SetMicroKernel and
// MicroKernel.
func TestMicroKernelSelection(t *testing.T) {
	names := MicroKernels()
	if len(names) == 0 || names[len(names)-1] != "generic" {
		t.Fatalf("MicroKernels() = %v, want generic last", names)
	}
	defer SetMicroKernel("auto")
	for _, name := range names {
		if !SetMicroKernel(name) || MicroKernel() != name {
			t.Errorf("SetMicroKernel(%q): MicroKernel() = %q", name, MicroKernel())
		}
	}
	if SetMicroKernel("no-such-kernel") {
		t.Error("SetMicroKernel accepted an unknown name")
	}
	SetMicroKernel("auto")
	if MicroKernel() != names[0] {
		t.Errorf("default MicroKernel() = %q, want %q", MicroKernel(), names[0])
	}
}

// TestSgemmFLOPs checks the FLOP count convention.
func TestSgemmFLOPs(t *testing.T) {
	if got := SgemmFLOPs(2, 3, 4); got != 48 {
		t.Errorf("SgemmFLOPs(2, 3, 4) = %v, want 48", got)
	}
}

// TestSgemmOuterK shrinks the packed-B budget so that B is packed in
// several outer k ranges, each followed by a pass over the row blocks.
func TestSgemmOuterK(t *testing.T) {
	old := maxPackedB
	maxPackedB = 4096
	defer func() { maxPackedB = old }()
	forEachKernel(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(11, 12))
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				checkSgemm(t, rng, tA, tB, 150, 45, 1100, 1, 2, 3, -1, 0.25)
			}
		}
	})
}

// TestEach checks that Each calls fn once for every index, and that it
// sets nothing process-wide: kernels on other goroutines keep their
// workers meanwhile.
func TestEach(t *testing.T) {
	before := Workers()
	for _, n := range []int{0, 1, 2, 7, 64} {
		var mu sync.Mutex
		calls := make([]int, n)
		Each(n, func(i int) {
			mu.Lock()
			calls[i]++
			mu.Unlock()
			if Workers() != before {
				t.Errorf("Workers() = %d inside Each, %d outside", Workers(), before)
			}
		})
		for i, c := range calls {
			if c != 1 {
				t.Errorf("n=%d: fn(%d) called %d times", n, i, c)
			}
		}
	}
}

// TestPar checks that Par(w).ParallelFor splits into at most w parts (w
// <= 0: Workers()) and covers the range once.
func TestPar(t *testing.T) {
	for _, w := range []Par{0, 1, 2, 3} {
		var mu sync.Mutex
		parts := 0
		covered := make([]int, 1000)
		w.ParallelFor(len(covered), 1, func(lo, hi int) {
			mu.Lock()
			parts++
			for i := lo; i < hi; i++ {
				covered[i]++
			}
			mu.Unlock()
		})
		if parts > w.count() || (w == 1 && parts != 1) {
			t.Errorf("Par(%d): %d parts", w, parts)
		}
		for i, c := range covered {
			if c != 1 {
				t.Fatalf("Par(%d): index %d covered %d times", w, i, c)
			}
		}
	}
}

// TestTogether checks that Together runs all calls at once (each waits
// for all the others).
func TestTogether(t *testing.T) {
	const n = 3
	var arrived sync.WaitGroup
	arrived.Add(n)
	seen := make([]atomic.Int32, n)
	Together(n, func(i int) {
		seen[i].Add(1)
		arrived.Done()
		arrived.Wait() // deadlocks unless all n run concurrently
	})
	for i := range seen {
		if c := seen[i].Load(); c != 1 {
			t.Errorf("fn(%d) called %d times", i, c)
		}
	}
}

// TestEachTogetherPanic checks that a panic in a call of Each or Together
// is raised again on the caller's goroutine, after the other calls.
func TestEachTogetherPanic(t *testing.T) {
	for name, run := range map[string]func(n int, fn func(int)){"Each": Each, "Together": Together} {
		var done atomic.Int32
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("%s: recovered %v, want boom", name, r)
				}
			}()
			run(4, func(i int) {
				if i == 1 {
					panic("boom")
				}
				done.Add(1)
			})
		}()
		if name == "Together" && done.Load() != 3 {
			t.Errorf("%s: %d other calls completed, want 3", name, done.Load())
		}
		if Workers() == 1 && runtime.GOMAXPROCS(0) > 1 {
			t.Errorf("%s: kernels left single-threaded after a panic", name)
		}
	}
}
