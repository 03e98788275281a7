package kernels

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for single-precision
// matrices stored in row-major order.
//
// op(A) is m×k and op(B) is k×n; C is m×n with leading dimension ldc. When
// transA is false, A is stored as an m×k matrix with leading dimension lda;
// when transA is true, A is stored as a k×m matrix (so op(A) = Aᵀ). B is
// treated likewise with transB and ldb. When beta is zero, C is overwritten
// without being read, so it may hold NaN or Inf on entry.
//
// Sgemm panics with a message starting with "kernels:" when a size or
// leading dimension is negative or too small, or when a slice is too short
// for the sizes given. The work is cache-blocked, packed and spread across
// Workers() goroutines through ParallelFor; Par(w).Sgemm uses at most w.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Par(0).Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Sgemm is the package's Sgemm spread over at most w goroutines. The
// result does not depend on w only where the product's k dimension is
// not split (see run): callers that need the same bits whatever the
// machine use the same w.
func (w Par) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := newProblem(transA, m, n, k, alpha, a, lda, false)
	g.workers = w.count()
	g.finish(transB, b, ldb, beta, c, ldc)
}

// newProblem checks the sizes and A of a product and returns its problem;
// overlap allows A's stored rows to overlap (SgemmOverlap).
func newProblem(transA bool, m, n, k int, alpha float32, a []float32, lda int, overlap bool) gemmProblem {
	checkSizes(m, n, k)
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	if overlap {
		checkOverlap("A", ar, ac, a, lda)
	} else {
		checkMatrix("A", ar, ac, a, lda)
	}
	return gemmProblem{transA: transA, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda}
}

// SgemmSerial is Sgemm computed on the calling goroutine alone, for
// callers that already spread their work across the workers (such as the
// per-tile-block products of a Winograd convolution).
func SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := newProblem(transA, m, n, k, alpha, a, lda, false)
	if !g.prepare(transB, b, ldb, beta, c, ldc) {
		g.serial(beta, c, ldc)
	}
}

// SgemmStridedSerial is SgemmSerial over count products of one shape,
// C_i = alpha*op(A_i)*op(B_i) + beta*C_i for i < count, whose operands lie
// at fixed distances: A_i at a[i*strideA:], B_i at b[i*strideB:] and C_i
// at c[i*strideC:] (strides non-negative). It checks the operands and
// chooses the micro-kernel once for all of them: the Winograd convolution
// makes one product per transformed-tile position, 16 or 36 per block of
// tiles, and the per-call work was 2% of evaluation. The C_i must not
// overlap one another or the A_i and B_i.
func SgemmStridedSerial(count int, transA, transB bool, m, n, k int, alpha float32, a []float32, lda, strideA int, b []float32, ldb, strideB int, beta float32, c []float32, ldc, strideC int) {
	if count < 0 || strideA < 0 || strideB < 0 || strideC < 0 {
		panic("kernels: SgemmStridedSerial: negative count or stride")
	}
	if count == 0 {
		return
	}
	// The last operands are the shortest slices: checking them checks all.
	last := count - 1
	if tooFar(last, strideA, len(a)) || tooFar(last, strideB, len(b)) || tooFar(last, strideC, len(c)) {
		panic("kernels: SgemmStridedSerial: operand slice too short")
	}
	g := newProblem(transA, m, n, k, alpha, a[last*strideA:], lda, false)
	if g.prepare(transB, b[last*strideB:], ldb, beta, c[last*strideC:], ldc) {
		// Empty, scaling only or tiny: each product on its own.
		for i := range last {
			SgemmSerial(transA, transB, m, n, k, alpha, a[i*strideA:], lda, b[i*strideB:], ldb, beta, c[i*strideC:], ldc)
		}
		return
	}
	for i := range count {
		g.a, g.b = a[i*strideA:], b[i*strideB:]
		g.serial(beta, c[i*strideC:], ldc)
	}
}

// tooFar reports whether i*stride lies beyond n (without overflowing).
func tooFar(i, stride, n int) bool {
	return i > 0 && stride > n/i
}

// SgemmOverlap is Sgemm for a read-only A whose stored rows may overlap:
// lda need only be positive, and may be smaller than the length of a
// stored row of A (k when transA is false, m when it is true), so that
// element (r, q) of the stored matrix, a[r*lda+q], is shared by several
// rows. A patch matrix of an NHWC image is such a matrix: the patches of
// one kernel row at consecutive pixels are overlapping windows of the
// image, lda = Cin apart. a must not share memory with c. The slice a must
// still hold the last stored row, (rows-1)*lda+cols elements.
func SgemmOverlap(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Par(0).SgemmOverlap(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmOverlap is the package's SgemmOverlap on at most w goroutines.
func (w Par) SgemmOverlap(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	g := newProblem(transA, m, n, k, alpha, a, lda, true)
	g.workers = w.count()
	g.finish(transB, b, ldb, beta, c, ldc)
}

// SgemmImplicit computes C = alpha*A*op(B) + beta*C where the m×k matrix
// A is not stored as one matrix but gathered from a in len(offs) column
// segments of segK columns each (k = segK*len(offs)):
//
//	A(i, s*segK+q) = a[offs[s] + i*lda + q]    for 0 <= q < segK.
//
// Each segment is a read-only matrix as in SgemmOverlap: lda need only be
// positive and rows may overlap. This is an implicit-GEMM convolution:
// with a the zero-padded NHWC image, lda = Cin, segK = KW*Cin and one
// segment per kernel row, A is the patch matrix without its copy. B, C,
// alpha and beta are as in Sgemm; a must not share memory with c.
func SgemmImplicit(transB bool, m, n, segK int, offs []int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	Par(0).SgemmImplicit(transB, m, n, segK, offs, alpha, a, lda, b, ldb, beta, c, ldc)
}

// SgemmImplicit is the package's SgemmImplicit on at most w goroutines.
func (w Par) SgemmImplicit(transB bool, m, n, segK int, offs []int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if segK < 0 {
		panic("kernels: SgemmImplicit: negative segK")
	}
	k := segK * len(offs)
	checkSizes(m, n, k)
	if lda < 1 {
		panic("kernels: Sgemm: leading dimension of A too small")
	}
	if m > 0 && segK > 0 {
		for _, off := range offs {
			if off < 0 || off > len(a) || len(a)-off < (m-1)*lda+segK {
				panic("kernels: SgemmImplicit: segment of A outside the slice")
			}
		}
	}
	g := gemmProblem{m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, workers: w.count()}
	if len(offs) > 1 || (len(offs) == 1 && offs[0] != 0) {
		g.aSeg, g.segK = offs, segK
	}
	g.finish(transB, b, ldb, beta, c, ldc)
}

// checkSizes panics unless m, n and k are non-negative.
func checkSizes(m, n, k int) {
	if m < 0 {
		panic("kernels: Sgemm: negative m")
	}
	if n < 0 {
		panic("kernels: Sgemm: negative n")
	}
	if k < 0 {
		panic("kernels: Sgemm: negative k")
	}
}

// finish checks B and C and computes the product g describes, whose A
// has been checked by the caller.
func (g *gemmProblem) finish(transB bool, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if g.prepare(transB, b, ldb, beta, c, ldc) {
		return
	}
	g.run(beta, c, ldc)
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

// SgemmFLOPs returns the number of floating-point operations, 2·m·n·k, that
// Sgemm performs for an m×n×k product, as used for GFLOP/s figures.
func SgemmFLOPs(m, n, k int) float64 {
	return 2 * float64(m) * float64(n) * float64(k)
}

// smallGemm is the largest m·n·k for which Sgemm uses a direct loop
// instead of the blocked, packed algorithm. Tests set it to zero to force
// the blocked path on small shapes.
var smallGemm = 4096

// checkMatrix panics unless s can hold a rows×cols row-major matrix with
// leading dimension ld.
func checkMatrix(name string, rows, cols int, s []float32, ld int) {
	if ld < 1 || ld < cols {
		panic("kernels: Sgemm: leading dimension of " + name + " too small")
	}
	if rows == 0 || cols == 0 {
		return
	}
	if len(s) < (rows-1)*ld+cols {
		panic("kernels: Sgemm: slice " + name + " too short")
	}
}

// checkOverlap is checkMatrix for a read-only matrix whose rows may
// overlap: ld need only be positive.
func checkOverlap(name string, rows, cols int, s []float32, ld int) {
	if ld < 1 {
		panic("kernels: Sgemm: leading dimension of " + name + " too small")
	}
	if rows == 0 || cols == 0 {
		return
	}
	if len(s) < (rows-1)*ld+cols {
		panic("kernels: Sgemm: slice " + name + " too short")
	}
}

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

// packBRange packs op(B)[po:pe, jc:jc+ncb] into dst as consecutive k
// blocks, as kEnd delimits them (kc deep but for the last, or the last of
// a segment of an implicit A), each a run of nr-wide slivers, with the
// slivers shared out among the workers when the panel is large.
func (g *gemmProblem) packBRange(po, pe, kc, jc, ncb, nr int, dst []float32, workers int) {
	slivers := (ncb + nr - 1) / nr
	var starts []int
	for pc := po; pc < pe; pc = g.kEnd(pc, pe, kc) {
		starts = append(starts, pc)
	}
	pack := func(lo, hi int) {
		for t := lo; t < hi; t++ {
			pc := starts[t/slivers]
			s := t % slivers
			g.packB(pc, g.kEnd(pc, pe, kc)-pc, jc, ncb, s, s+1, nr, dst[(pc-po)*slivers*nr:])
		}
	}
	if workers <= 1 || (pe-po)*ncb < 1<<15 {
		pack(0, len(starts)*slivers)
		return
	}
	Par(workers).ParallelFor(len(starts)*slivers, 1, pack)
}

// packA packs op(A)[ic:ic+mcb, pc:pc+kcb] into dst as consecutive mr-row
// slivers, each stored k-major (dst[p*mr+i]); rows past mcb in the last
// sliver are zero.
func (g *gemmProblem) packA(ic, mcb, pc, kcb, mr int, dst []float32) {
	a, lda := g.a, g.lda
	for ir := 0; ir < mcb; ir += mr {
		rows := min(mr, mcb-ir)
		d := dst[ir*kcb : ir*kcb+mr*kcb]
		if !g.transA {
			for i := 0; i < rows; i++ {
				// Contiguous runs: the whole block, or up to the end of
				// a segment of an implicit A.
				for p := 0; p < kcb; {
					run := kcb - p
					if g.aSeg != nil {
						run = min(run, g.segK-(pc+p)%g.segK)
					}
					src := a[g.aIndex(ic+ir+i, pc+p):]
					for q, v := range src[:run] {
						d[(p+q)*mr+i] = v
					}
					p += run
				}
			}
		} else {
			for p := 0; p < kcb; p++ {
				src := a[(pc+p)*lda+ic+ir:]
				copy(d[p*mr:p*mr+rows], src[:rows])
			}
		}
		if rows < mr {
			for p := 0; p < kcb; p++ {
				clear(d[p*mr+rows : p*mr+mr])
			}
		}
	}
}

// packB packs slivers s0..s1 of op(B)[pc:pc+kcb, jc:jc+ncb] into dst; sliver
// s covers columns jc+s*nr.. and is stored at dst[s*kcb*nr:] k-major
// (dst[p*nr+j]); columns past ncb are zero.
func (g *gemmProblem) packB(pc, kcb, jc, ncb, s0, s1, nr int, dst []float32) {
	b, ldb := g.b, g.ldb
	for s := s0; s < s1; s++ {
		j0 := s * nr
		cols := min(nr, ncb-j0)
		d := dst[s*kcb*nr : (s+1)*kcb*nr]
		if !g.transB {
			for p := 0; p < kcb; p++ {
				src := b[(pc+p)*ldb+jc+j0:]
				copy(d[p*nr:p*nr+cols], src[:cols])
				if cols < nr {
					clear(d[p*nr+cols : p*nr+nr])
				}
			}
		} else {
			for j := 0; j < cols; j++ {
				src := b[(jc+j0+j)*ldb+pc:]
				src = src[:kcb]
				for p, v := range src {
					d[p*nr+j] = v
				}
			}
			if cols < nr {
				for p := 0; p < kcb; p++ {
					clear(d[p*nr+cols : p*nr+nr])
				}
			}
		}
	}
}

// macroSegmented computes, for macro, the row sliver at ir of a block
// whose implicit A is read in place with all its segments in one call
// (g.segFused), or from ir = 0 the loopTiles full tiles of a one-sliver
// B in one call; it returns the row of the last sliver it computed. A
// bottom-edge sliver is packed (all segments) and computed by kn.fn.
func (g *gemmProblem) macroSegmented(blk *macroBlock, ap, bp, c []float32, ldc int, beta float32, ts *scratch, ir, loopTiles int) int {
	kn := g.kern
	mr, nr := kn.mr, kn.nr
	kcb, alpha := blk.kcb, g.alpha
	nseg := len(g.aSeg)
	rows := min(mr, blk.mcb-ir)
	if testSegFused != nil {
		testSegFused()
	}
	as := g.a[g.aIndex(blk.ic+ir, 0):]
	if ir == 0 && loopTiles > 0 {
		jr := blk.s0 * nr
		kn.segLoop(g.segK, as, g.lda, bp[blk.s0*kcb*nr:], c[jr:], ldc, alpha, beta, loopTiles, mr*g.lda, nseg, g.segStep)
		return (loopTiles - 1) * mr
	}
	if rows < mr {
		g.packA(blk.ic+ir, rows, 0, kcb, mr, ap)
	}
	for s := blk.s0; s < blk.s1; s++ {
		jr := s * nr
		cols := min(nr, blk.ncb-jr)
		bs := bp[s*kcb*nr:]
		if rows == mr && cols == nr {
			kn.segLoop(g.segK, as, g.lda, bs, c[ir*ldc+jr:], ldc, alpha, beta, 1, 0, nseg, g.segStep)
			continue
		}
		tile := ts.get()
		if rows == mr {
			kn.segLoop(g.segK, as, g.lda, bs, tile, nr, alpha, 0, 1, 0, nseg, g.segStep)
		} else {
			kn.fn(kcb, ap, 1, mr, bs, tile, nr, alpha, 0)
		}
		mergeTile(c[ir*ldc+jr:], ldc, tile, nr, rows, cols, beta)
	}
	return ir
}

// mergeTile sets the rows×cols corner of C (leading dimension ldc) to
// beta*C plus the scratch tile's values (rows nr apart), as the
// micro-kernel would have for a whole tile.
func mergeTile(c []float32, ldc int, tile []float32, nr, rows, cols int, beta float32) {
	for i := 0; i < rows; i++ {
		crow := c[i*ldc : i*ldc+cols]
		trow := tile[i*nr : i*nr+cols]
		if beta == 0 {
			copy(crow, trow)
			continue
		}
		for j, v := range trow {
			crow[j] = beta*crow[j] + v
		}
	}
}

// macroBlock describes the part of the product one macro-kernel call
// covers: rows ic..ic+mcb of C, the k range pc..pc+kcb, and the column
// slivers s0..s1 of an ncb-column block.
type macroBlock struct {
	ic, mcb, pc, kcb, ncb int
	s0, s1                int
	direct                bool // read A in place; ap holds only edge slivers
}

// macro runs the micro-kernel over one block of C at c (leading dimension
// ldc) with the packed B block bp. A comes from the packed block ap, or in
// place from the operand when blk.direct is set. Partial tiles at the
// bottom and right edges go through the scratch tile.
func (g *gemmProblem) macro(blk *macroBlock, ap, bp, c []float32, ldc int, beta float32, ts *scratch) {
	kn := g.kern
	mr, nr := kn.mr, kn.nr
	kcb, alpha := blk.kcb, g.alpha
	// With one sliver of B, all full tiles go to one looping call.
	loopTiles := 0
	if kn.loop != nil && blk.s1-blk.s0 == 1 && blk.ncb-blk.s0*nr >= nr {
		loopTiles = blk.mcb / mr
	}
	for ir := 0; ir < blk.mcb; ir += mr {
		rows := min(mr, blk.mcb-ir)
		var as []float32
		var ars, acs, astep int
		switch {
		case !blk.direct:
			as, ars, acs, astep = ap[ir*kcb:], 1, mr, mr*kcb
		case !g.transA:
			as, ars, acs, astep = g.a[g.aIndex(blk.ic+ir, blk.pc):], g.lda, 1, mr*g.lda
		default:
			as, ars, acs, astep = g.a[blk.pc*g.lda+blk.ic+ir:], 1, g.lda, mr
		}
		if blk.direct && g.segFused {
			// An implicit A whole, from its first segment (blk.pc is 0).
			ir = g.macroSegmented(blk, ap, bp, c, ldc, beta, ts, ir, loopTiles)
			continue
		}
		if ir == 0 && loopTiles > 0 {
			jr := blk.s0 * nr
			kn.loop(kcb, as, ars, acs, bp[blk.s0*kcb*nr:], c[jr:], ldc, alpha, beta, loopTiles, astep)
			ir = (loopTiles - 1) * mr
			continue
		}
		// A short sliver at the bottom edge is still read in place when
		// its mr rows lie within the slice: the rows past the end of A
		// only feed rows of the scratch tile that are dropped (row i of
		// C depends on row i of A alone). Otherwise it is packed.
		if blk.direct && rows < mr {
			if (mr-1)*ars+(kcb-1)*acs >= len(as) {
				g.packA(blk.ic+ir, rows, blk.pc, kcb, mr, ap)
				as, ars, acs = ap, 1, mr
			} else if testEdgeInPlace != nil {
				testEdgeInPlace()
			}
		}
		for s := blk.s0; s < blk.s1; s++ {
			jr := s * nr
			cols := min(nr, blk.ncb-jr)
			bs := bp[s*kcb*nr:]
			if rows == mr && cols == nr {
				kn.fn(kcb, as, ars, acs, bs, c[ir*ldc+jr:], ldc, alpha, beta)
				continue
			}
			tile := ts.get()
			kn.fn(kcb, as, ars, acs, bs, tile, nr, alpha, 0)
			mergeTile(c[ir*ldc+jr:], ldc, tile, nr, rows, cols, beta)
		}
	}
}
