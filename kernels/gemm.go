package kernels

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
	return gemmProblem{transA: transA, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, overlap: overlap}
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

// SgemmFLOPs returns the number of floating-point operations, 2·m·n·k, that
// Sgemm performs for an m×n×k product, as used for GFLOP/s figures.
func SgemmFLOPs(m, n, k int) float64 {
	return 2 * float64(m) * float64(n) * float64(k)
}

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
