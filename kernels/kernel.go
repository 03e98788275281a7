package kernels

import (
	"strings"
	"sync/atomic"
)

// microKernel describes one register-blocked micro-kernel and the cache
// blocking that suits it.
type microKernel struct {
	name   string
	mr, nr int // register tile: mr rows by nr columns of C
	kc     int // depth of a packed block
	mc     int // rows of a packed A block, a multiple of mr
	// fn computes the mr×nr tile C = alpha*A*Bp + beta*C over kc steps,
	// where element (i, p) of A is a[i*ars+p*acs] and Bp holds kc groups
	// of nr values. When beta is 0, C is written without being read. A
	// packed A sliver has ars = 1 and acs = mr.
	fn func(kc int, a []float32, ars, acs int, b, c []float32, ldc int, alpha, beta float32)
	// loop, when not nil, is fn over tiles tiles one under another: tile
	// t covers rows t*mr.. of C, with A at a[t*astep:] and the same B.
	loop func(kc int, a []float32, ars, acs int, b, c []float32, ldc int, alpha, beta float32, tiles, astep int)
	// segLoop, when not nil, is loop for an A read in place row by row
	// (ars = lda, acs = 1) made of nseg segments of kc columns, segment s
	// starting segstep values after segment s-1, and Bp of nseg*kc
	// groups: the implicit GEMM of SgemmImplicit in one call per run of
	// tiles.
	segLoop func(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32, tiles, astep, nseg, segstep int)
	// direct reports whether fn also accepts A in place, with ars = 1 or
	// acs = 1; kcDirect and mcDirect are the blocking used then.
	direct             bool
	kcDirect, mcDirect int
	// narrow, when set, is a variant with a narrower tile for outputs of
	// at most narrow.nr columns; others are variants with tiles of other
	// rows for outputs that the main and narrow tiles would pad more.
	// Sgemm chooses among them by forShape, weighing a variant's padded
	// area by its cost (in tenths; 10 for the main and narrow kernels).
	narrow *microKernel
	others []*microKernel
	cost   int
}

// forShape returns the kernel variant to use for an m×n output: the one
// whose tiles cover it with the least padded area, weighed by cost, the
// narrow variant taken over the main one for outputs no wider than its
// tile.
//
// The AVX-512 16x16 tile counts 50% more (per k step it loads 17 values
// for 16 FMAs, the 14x32 tile 16 for 28: on the 32x32 weight-gradient
// products of 32->32 channel convolutions it measured 6% slower than the
// 14x32 tile that pads them to 42 rows; on the 16x16 ones of 16->16
// convolutions, 8% faster than the 28x16 tile), the 8x32 tile 10% more
// (10 values for 16 FMAs), and the 28x8 tile of ymm vectors 20% more
// (as fast per value as the zmm tiles where 512-bit operations are split
// in two, as on Zen 4; twice as slow where they are not): it is taken for
// outputs of 8 columns or fewer, and some others it pads less, such as
// 24.
func (kn *microKernel) forShape(m, n int) *microKernel {
	best, cost := kn, kn.padded(m, n)*10
	if nw := kn.narrow; nw != nil && n <= nw.nr {
		best, cost = nw, nw.padded(m, n)*10
	}
	for _, o := range kn.others {
		if c := o.padded(m, n) * o.cost; c < cost {
			best, cost = o, c
		}
	}
	return best
}

// padded returns the area of the tiles of kn that cover an m×n output.
func (kn *microKernel) padded(m, n int) int {
	return (m + kn.mr - 1) / kn.mr * kn.mr * ((n + kn.nr - 1) / kn.nr * kn.nr)
}

// variants returns kn and its other variants.
func (kn *microKernel) variants() []*microKernel {
	v := []*microKernel{kn}
	if kn.narrow != nil {
		v = append(v, kn.narrow)
	}
	return append(v, kn.others...)
}

// mcTiles returns the number of mr-row slivers in a packed A block.
func (kn *microKernel) mcTiles() int { return kn.mc / kn.mr }

// genericKernel is the portable pure-Go micro-kernel.
var genericKernel = &microKernel{
	name: "generic",
	mr:   4, nr: 4,
	kc: 256, mc: 128,
	fn: kernGeneric4x4,
}

// kernelList holds the micro-kernels usable on this machine, best first;
// the architecture-specific files add theirs in init.
var kernelList = []*microKernel{genericKernel}

// current is the micro-kernel Sgemm uses; nil means the best available.
var current atomic.Pointer[microKernel]

// activeKernel returns the micro-kernel family Sgemm uses now.
func activeKernel() *microKernel {
	if kn := current.Load(); kn != nil {
		return kn
	}
	return kernelList[0]
}

// TileColumns returns the number of columns of the main tile of the
// micro-kernel Sgemm currently uses (32 for AVX-512, 16 for AVX2): a
// product with that many columns whose B is stored row by row without
// gaps (ldb equal to it) reads B in place instead of packing it.
func TileColumns() int { return activeKernel().nr }

// MicroKernel returns the name of the micro-kernel Sgemm currently uses,
// such as "avx512", "avx2" or "generic".
func MicroKernel() string { return activeKernel().name }

// MicroKernels returns the names of the micro-kernels available on this
// machine, fastest first; the last is always "generic".
func MicroKernels() []string {
	names := make([]string, len(kernelList))
	for i, kn := range kernelList {
		names[i] = kn.name
	}
	return names
}

// SetMicroKernel selects the micro-kernel Sgemm uses by name, as listed by
// MicroKernels, and the elementwise kernels (AddTo, AffineRows,
// ColumnMoments, ...) for the same instruction set; the empty string or
// "auto" restores the default choice. It returns false, changing nothing,
// when no such kernel is available. It is meant for tests and benchmarks;
// calls already running keep the kernels they started with.
func SetMicroKernel(name string) bool {
	if name == "" || strings.EqualFold(name, "auto") {
		current.Store(nil)
		selectElem("")
		return true
	}
	for _, kn := range kernelList {
		if kn.name == name {
			current.Store(kn)
			selectElem(name)
			return true
		}
	}
	return false
}

// kernGeneric4x4 is the pure-Go 4×4 micro-kernel. It accepts only packed
// A slivers.
func kernGeneric4x4(kc int, a []float32, ars, acs int, b, c []float32, ldc int, alpha, beta float32) {
	if ars != 1 || acs != 4 {
		panic("kernels: generic micro-kernel needs packed A")
	}
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	a = a[:kc*4]
	b = b[:kc*4]
	for p := 0; p < len(a); p += 4 {
		aa := a[p : p+4 : p+4]
		bb := b[p : p+4 : p+4]
		a0, a1, a2, a3 := aa[0], aa[1], aa[2], aa[3]
		b0, b1, b2, b3 := bb[0], bb[1], bb[2], bb[3]
		c00 += a0 * b0
		c01 += a0 * b1
		c02 += a0 * b2
		c03 += a0 * b3
		c10 += a1 * b0
		c11 += a1 * b1
		c12 += a1 * b2
		c13 += a1 * b3
		c20 += a2 * b0
		c21 += a2 * b1
		c22 += a2 * b2
		c23 += a2 * b3
		c30 += a3 * b0
		c31 += a3 * b1
		c32 += a3 * b2
		c33 += a3 * b3
	}
	storeRow4(c[0:4:4], alpha, beta, c00, c01, c02, c03)
	storeRow4(c[ldc:ldc+4:ldc+4], alpha, beta, c10, c11, c12, c13)
	storeRow4(c[2*ldc:2*ldc+4:2*ldc+4], alpha, beta, c20, c21, c22, c23)
	storeRow4(c[3*ldc:3*ldc+4:3*ldc+4], alpha, beta, c30, c31, c32, c33)
}

// storeRow4 stores alpha*v into the four elements of c, adding beta*c
// unless beta is zero.
func storeRow4(c []float32, alpha, beta float32, v0, v1, v2, v3 float32) {
	c = c[:4]
	if beta == 0 {
		c[0], c[1], c[2], c[3] = alpha*v0, alpha*v1, alpha*v2, alpha*v3
		return
	}
	c[0] = beta*c[0] + alpha*v0
	c[1] = beta*c[1] + alpha*v1
	c[2] = beta*c[2] + alpha*v2
	c[3] = beta*c[3] + alpha*v3
}
