package kernels

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// finish checks B and C and computes the product g describes, whose A
// has been checked by the caller.
func (g *gemmProblem) finish(transB bool, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if g.prepare(transB, b, ldb, beta, c, ldc) {
		return
	}
	if g.swap() {
		g.transposed(beta, c, ldc)
		return
	}
	g.run(beta, c, ldc)
}

// swap reports whether the product is better computed transposed, Cᵀ =
// op(B)ᵀ op(A)ᵀ: when C has few rows and many columns, the blocked
// algorithm packs all of op(B), k·n values, for a few rows of output,
// and packing then costs as much as the multiply (a dense layer of a
// small batch: the App. K bottleneck's 12544 x 100 weights for 8 or 32
// images). Transposed, op(B) is read in place as A and only op(A), k·m
// values, is packed.
func (g *gemmProblem) swap() bool {
	return g.aSeg == nil && !g.overlap && g.m <= swapMaxM && g.n >= 4*g.m && g.n >= swapMinN &&
		float64(g.k)*float64(g.n) >= swapMinB
}

// Shapes that swap computes transposed: at most swapMaxM rows of C, at
// least swapMinN (and 4·m) columns, and op(B) of at least swapMinB
// values (docs/perf.md, eighth session).
const (
	swapMaxM = 16
	swapMinN = 64
	swapMinB = 1 << 16
)

// transposed computes the product as Cᵀ = op(B)ᵀ op(A)ᵀ into a pooled
// buffer, then C = that transposed + beta*C.
func (g *gemmProblem) transposed(beta float32, c []float32, ldc int) {
	m, n := g.m, g.n
	tp := getBuf(m * n)
	defer putBuf(tp)
	t := (*tp)[:m*n]
	// op(B)ᵀ is B stored as it is, read with the opposite transposition;
	// likewise op(A)ᵀ.
	h := gemmProblem{transA: !g.transB, m: n, n: m, k: g.k, alpha: g.alpha, a: g.b, lda: g.ldb, workers: g.workers}
	h.finish(!g.transA, g.a, g.lda, 0, t, m)
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			for j := range row {
				row[j] = t[j*m+i]
			}
			continue
		}
		for j := range row {
			row[j] = t[j*m+i] + beta*row[j]
		}
	}
}

// prepare checks B and C, records B and the micro-kernel in g, and
// computes the products that need no blocking (empty, scaling only, or
// tiny); it reports whether the product is done.
func (g *gemmProblem) prepare(transB bool, b []float32, ldb int, beta float32, c []float32, ldc int) bool {
	m, n, k := g.m, g.n, g.k
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix("B", br, bc, b, ldb)
	checkMatrix("C", m, n, c, ldc)
	g.transB, g.b, g.ldb = transB, b, ldb
	if m == 0 || n == 0 {
		return true
	}
	if k == 0 || g.alpha == 0 {
		scaleC(m, n, beta, c, ldc)
		return true
	}
	if float64(m)*float64(n)*float64(k) <= float64(smallGemm) {
		g.small(beta, c, ldc)
		return true
	}
	g.kern = activeKernel().forShape(m, n)
	g.segFused, g.segStep = g.fuseSegments()
	return false
}

// fuseSegments reports whether the micro-kernel can take an implicit A
// whole, all segments in one call (its segLoop), and the distance between
// the segments: when A is read in place in one k block and its segments
// are equally spaced.
func (g *gemmProblem) fuseSegments() (bool, int) {
	kn := g.kern
	kc := kn.kc // the depth of a k block in place (blocking)
	if g.n <= directMaxN {
		kc = kn.kcDirect
	}
	if len(g.aSeg) < 2 || g.transA || kn.segLoop == nil || !g.readsAInPlace() || g.k > kc {
		return false, 0
	}
	step := g.aSeg[1] - g.aSeg[0]
	if step < 0 {
		return false, 0
	}
	for i := 2; i < len(g.aSeg); i++ {
		if g.aSeg[i]-g.aSeg[i-1] != step {
			return false, 0
		}
	}
	return true, step
}

// readsAInPlace reports whether the blocked loops read A in place rather
// than packing it (see blocking).
func (g *gemmProblem) readsAInPlace() bool {
	kn := g.kern
	return kn.direct && (g.n <= directMaxN || (!g.transA && g.lda%1024 != 0))
}

// smallGemm is the largest m·n·k for which Sgemm uses a direct loop
// instead of the blocked, packed algorithm. Tests set it to zero to force
// the blocked path on small shapes.
var smallGemm = 4096

// scaleC sets C = beta*C, writing zeros without reading C when beta is 0.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}

// small is a direct, unblocked Sgemm for tiny problems where packing
// would cost more than it saves.
func (g *gemmProblem) small(beta float32, c []float32, ldc int) {
	a, lda, b, ldb := g.a, g.lda, g.b, g.ldb
	for i := 0; i < g.m; i++ {
		crow := c[i*ldc : i*ldc+g.n]
		for j := range crow {
			var s float32
			for p := 0; p < g.k; p++ {
				var av, bv float32
				if g.transA {
					av = a[p*lda+i]
				} else {
					av = a[g.aIndex(i, p)]
				}
				if g.transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				crow[j] = g.alpha * s
			} else {
				crow[j] = g.alpha*s + beta*crow[j]
			}
		}
	}
}

// gemmProblem holds the operands of one Sgemm call that the blocked driver
// needs; C is passed separately because the k-split strategy redirects it
// to per-worker partial sums.
type gemmProblem struct {
	transA, transB bool
	m, n, k        int
	alpha          float32
	a              []float32
	lda            int
	b              []float32
	ldb            int
	kern           *microKernel
	// aSeg, when set, makes a non-transposed A implicit, gathered from
	// column segments of segK columns (see SgemmImplicit): element (i, p)
	// is a[aSeg[p/segK] + i*lda + p%segK]. k blocks never straddle two
	// segments, so that each block of A is a plain strided matrix.
	aSeg []int
	segK int
	// segFused, set by prepare, says that the blocks of an implicit A
	// read in place span all its segments, which the kernel's segLoop
	// walks segStep values apart (equally spaced segments, one k block).
	segFused bool
	segStep  int
	// workers is the most goroutines the product may use.
	workers int
	// overlap says that A's stored rows may overlap (SgemmOverlap).
	overlap bool
}

// aIndex returns the index in g.a of element (i, p) of a non-transposed A.
func (g *gemmProblem) aIndex(i, p int) int {
	if g.aSeg == nil {
		return i*g.lda + p
	}
	return g.aSeg[p/g.segK] + i*g.lda + p%g.segK
}

// kEnd returns the end of the k block that starts at pc: kc further on,
// but no further than pe or the end of pc's segment of an implicit A.
func (g *gemmProblem) kEnd(pc, pe, kc int) int {
	e := min(pc+kc, pe)
	if g.aSeg != nil && !g.segFused {
		e = min(e, (pc/g.segK+1)*g.segK)
	}
	return e
}

// bufPools holds reusable buffers for packed panels and partial sums, one
// pool per power-of-two capacity, so that the hot path makes no large
// allocations once the pools are warm.
var bufPools [64]sync.Pool

// getBuf returns a buffer of n float32s, 64-byte aligned, from the pools.
func getBuf(n int) *[]float32 {
	class := bits.Len(uint(max(n, 1) - 1))
	if p, ok := bufPools[class].Get().(*[]float32); ok {
		*p = (*p)[:n]
		return p
	}
	s := alignedFloats(1 << class)[:n]
	return &s
}

// putBuf returns a buffer obtained from getBuf to the pools.
func putBuf(p *[]float32) {
	bufPools[bits.Len(uint(cap(*p)-1))].Put(p)
}

// alignedFloats allocates n float32s whose first element is 64-byte aligned.
func alignedFloats(n int) []float32 {
	s := make([]float32, n+16)
	off := 0
	for off < 16 && uintptr(unsafe.Pointer(&s[off]))%64 != 0 {
		off++
	}
	return s[off : off+n : off+n]
}

// run computes C = alpha*op(A)*op(B) + beta*C for the whole problem,
// choosing how to spread it over the workers.
func (g *gemmProblem) run(beta float32, c []float32, ldc int) {
	kn := g.kern
	workers := max(g.workers, 1)
	work := float64(g.m) * float64(g.n) * float64(g.k)
	if workers > 1 && work < parallelMinWork {
		workers = 1
	}
	if workers > 1 {
		tilesM := (g.m + kn.mr - 1) / kn.mr
		tilesN := (g.n + kn.nr - 1) / kn.nr
		// Few output tiles but a long inner dimension: give every worker
		// a slice of k and sum the partial products afterwards.
		if tilesM*tilesN < 4*workers*kn.mcTiles() && g.k >= 4*kn.kc*workers && g.k >= 4*max(g.m, g.n) {
			g.runSplitK(workers, beta, c, ldc)
			return
		}
	}
	g.blocked(0, g.k, beta, c, ldc, workers)
}

// parallelMinWork is the m·n·k below which Sgemm stays on one goroutine.
const parallelMinWork = 1 << 21

// runSplitK splits the k dimension into one range per worker. The first
// worker accumulates straight into C with the caller's beta; the others
// write partial products to pooled buffers that are then added into C.
func (g *gemmProblem) runSplitK(workers int, beta float32, c []float32, ldc int) {
	m, n := g.m, g.n
	parts := make([]*[]float32, workers)
	for w := 1; w < workers; w++ {
		parts[w] = getBuf(m * n)
	}
	Par(workers).ParallelFor(workers, 1, func(lo, hi int) {
		for w := lo; w < hi; w++ {
			p0, p1 := w*g.k/workers, (w+1)*g.k/workers
			if w == 0 {
				g.blocked(p0, p1, beta, c, ldc, 1)
			} else {
				g.blocked(p0, p1, 0, *parts[w], n, 1)
			}
		}
	})
	Par(workers).ParallelFor(m, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			crow := c[i*ldc : i*ldc+n]
			for w := 1; w < workers; w++ {
				prow := (*parts[w])[i*n : i*n+n]
				for j := range crow {
					crow[j] += prow[j]
				}
			}
		}
	})
	for w := 1; w < workers; w++ {
		putBuf(parts[w])
	}
}

// maxPackedB bounds the size in float32s of the shared packed B panel; a
// variable so that tests can make it small.
var maxPackedB = 1 << 20

// bBlockFloats is the L2 budget, in float32s, for one kc×nc block of packed
// B: the block stays in each core's L2 cache while the A slivers stream
// past it.
const bBlockFloats = 1 << 17

// directMaxN is the widest output for which kernels that can read A in
// place always do so instead of packing it: each A element then serves at
// most directMaxN/nr micro-kernel calls, too few to repay packing it.
const directMaxN = 128

// blocked computes C = alpha*op(A)[:, p0:p1]*op(B)[p0:p1, :] + beta*C with
// the GotoBLAS loop nest, using up to workers goroutines.
//
// For each block of nc columns and each outer k range, B is packed once
// into a shared buffer of kc×nr slivers; then row blocks of mc rows (and,
// when there are few of them, groups of nr-column slivers) are handed out
// dynamically to the workers. Each worker packs its A block into a private
// buffer, or reads A in place when the kernel supports that and the shape
// allows, and runs the macro-kernel over it.
func (g *gemmProblem) blocked(p0, p1 int, beta float32, c []float32, ldc int, workers int) {
	kn := g.kern
	mr, nr := kn.mr, kn.nr
	direct, kc, mc, nc, kOuter := g.blocking(p0, p1)

	bp := getBuf(min(kOuter, p1-p0)*nc + nr)
	defer putBuf(bp)

	rowBlocks := (g.m + mc - 1) / mc
	for jc := 0; jc < g.n; jc += nc {
		ncb := min(nc, g.n-jc)
		slivers := (ncb + nr - 1) / nr
		for po := p0; po < p1; po += kOuter {
			pe := min(po+kOuter, p1)
			var b []float32
			if g.bInPlace() {
				b = g.b[po*nr : pe*nr]
			} else {
				b = (*bp)[:(pe-po)*slivers*nr]
				g.packBRange(po, pe, kc, jc, ncb, nr, b, workers)
			}
			// Tasks: row blocks × column groups.
			groups := 1
			if rowBlocks < 4*workers && slivers > 1 {
				groups = min(slivers, (4*workers+rowBlocks-1)/rowBlocks)
			}
			tasks := rowBlocks * groups
			var next atomic.Int64
			body := func() {
				apLen := mc*kc + mr
				if direct {
					apLen = mr*kc + mr
				}
				ap := getBuf(apLen)
				tile := scratch{n: mr*nr + 16}
				for {
					t := int(next.Add(1)) - 1
					if t >= tasks {
						break
					}
					rb, grp := t/groups, t%groups
					ic := rb * mc
					mcb := min(mc, g.m-ic)
					s0, s1 := grp*slivers/groups, (grp+1)*slivers/groups
					for pc, pcEnd := po, 0; pc < pe; pc = pcEnd {
						pcEnd = g.kEnd(pc, pe, kc)
						kcb := pcEnd - pc
						if !direct {
							g.packA(ic, mcb, pc, kcb, mr, *ap)
						}
						be := beta
						if pc != p0 {
							be = 1
						}
						blk := macroBlock{
							ic: ic, mcb: mcb, pc: pc, kcb: kcb, ncb: ncb,
							s0: s0, s1: s1, direct: direct,
						}
						g.macro(&blk, *ap, b[(pc-po)*slivers*nr:], c[ic*ldc+jc:], ldc, be, &tile)
					}
				}
				tile.release()
				putBuf(ap)
			}
			if workers <= 1 || tasks <= 1 {
				body()
				continue
			}
			Par(workers).ParallelFor(min(workers, tasks), 1, func(lo, hi int) {
				body()
			})
		}
	}
}

// testSegFused, when set by a test, is called each time the macro-kernel
// takes an implicit A with all its segments at once.
var testSegFused func()

// testEdgeInPlace, when set by a test, is called each time a bottom-edge
// sliver of A is read in place.
var testEdgeInPlace func()

// blocking returns the cache blocking of the product over the k range
// [p0, p1): whether A is read in place, the depth kc and rows mc of a
// block of A, the columns nc of a block of B, and the k range kOuter of
// one packed B panel.
func (g *gemmProblem) blocking(p0, p1 int) (direct bool, kc, mc, nc, kOuter int) {
	kn := g.kern
	nr := kn.nr
	kc, mc = kn.kc, kn.mc
	// readsAInPlace: a narrow output (A is streamed from memory once
	// and used for only a few micro-kernel calls), or a wide one whose
	// kc-deep sliver of row-major A is reused from L1 across the slivers
	// of B, which works as long as its rows do not all map to the same
	// cache sets (a stride of a multiple of 4 KiB).
	if g.readsAInPlace() {
		direct = true
		if g.n <= directMaxN {
			kc, mc = kn.kcDirect, kn.mcDirect
		}
	}
	// nc: as many slivers as keep a kc-deep packed B block within the L2
	// budget, and no more than n needs.
	nc = max(nr, bBlockFloats/min(kc, p1-p0)/nr*nr)
	if g.n < nc {
		nc = (g.n + nr - 1) / nr * nr
	}
	// Outer k range: as many kc blocks as fit in the packed-B budget.
	kOuter = max(kc, maxPackedB/nc/kc*kc)
	return direct, kc, mc, nc, kOuter
}

// bInPlace reports whether B is one micro-kernel sliver wide and stored
// row by row without gaps: exactly its packed form, read in place.
func (g *gemmProblem) bInPlace() bool {
	return !g.transB && g.n == g.kern.nr && g.ldb == g.kern.nr
}

// serial computes the whole product on the calling goroutine with the
// loop nest of blocked but none of its task sharing. It makes no
// allocations once the buffer pools are warm and does not leak g (no
// closures), so SgemmSerial's problem stays on its stack: the Winograd
// convolution calls it tens of thousands of times per training step, and
// garbage at that rate grew the heap, and peak memory, by a third.
func (g *gemmProblem) serial(beta float32, c []float32, ldc int) {
	kn := g.kern
	mr, nr := kn.mr, kn.nr
	direct, kc, mc, nc, kOuter := g.blocking(0, g.k)
	// Buffers only where they are used: the Winograd convolution makes
	// tens of thousands of small products a step, most of which need no
	// packing, and pool round trips were a good part of their cost.
	var bp, ap *[]float32
	if !g.bInPlace() {
		bp = getBuf(min(kOuter, g.k)*nc + nr)
		defer putBuf(bp)
	}
	var apBuf []float32
	if !direct || g.m%mr != 0 {
		apLen := mc*kc + mr
		if direct {
			apLen = mr*kc + mr
		}
		ap = getBuf(apLen)
		defer putBuf(ap)
		apBuf = *ap
	}
	tile := scratch{n: mr*nr + 16}
	defer tile.release()
	for jc := 0; jc < g.n; jc += nc {
		ncb := min(nc, g.n-jc)
		slivers := (ncb + nr - 1) / nr
		for po := 0; po < g.k; po += kOuter {
			pe := min(po+kOuter, g.k)
			var b []float32
			if g.bInPlace() {
				b = g.b[po*nr : pe*nr]
			} else {
				b = (*bp)[:(pe-po)*slivers*nr]
				for pc := po; pc < pe; pc = g.kEnd(pc, pe, kc) {
					g.packB(pc, g.kEnd(pc, pe, kc)-pc, jc, ncb, 0, slivers, nr, b[(pc-po)*slivers*nr:])
				}
			}
			for ic := 0; ic < g.m; ic += mc {
				mcb := min(mc, g.m-ic)
				for pc, pcEnd := po, 0; pc < pe; pc = pcEnd {
					pcEnd = g.kEnd(pc, pe, kc)
					kcb := pcEnd - pc
					if !direct {
						g.packA(ic, mcb, pc, kcb, mr, apBuf)
					}
					be := beta
					if pc != 0 {
						be = 1
					}
					blk := macroBlock{ic: ic, mcb: mcb, pc: pc, kcb: kcb, ncb: ncb, s0: 0, s1: slivers, direct: direct}
					g.macro(&blk, apBuf, b[(pc-po)*slivers*nr:], c[ic*ldc+jc:], ldc, be, &tile)
				}
			}
		}
	}
}

// scratch is a pooled buffer of n values taken on first use, for the
// scratch tile that only products with edge tiles need.
type scratch struct {
	n int
	p *[]float32
}

// get returns the buffer, taking it from the pools the first time.
func (s *scratch) get() []float32 {
	if s.p == nil {
		s.p = getBuf(s.n)
	}
	return *s.p
}

// release hands the buffer back if one was taken.
func (s *scratch) release() {
	if s.p != nil {
		putBuf(s.p)
		s.p = nil
	}
}
