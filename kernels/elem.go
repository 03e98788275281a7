package kernels

import (
	"math"
	"sync/atomic"
)

// The elementwise kernels: flat operations over slices (AddTo, Add, Mul,
// ReluForward, ReluBackward, Exp, Tanh, Log), per-channel operations over
// row-major data whose rows are C channels wide (AffineRows and its
// variants), and
// per-channel column sums in float64 (ColumnSums, ColumnMoments). They run
// on the calling goroutine; callers split large slices across workers.
//
// On amd64 each comes as AVX-512 and AVX2 assembly, chosen like the Sgemm
// micro-kernel (SetMicroKernel selects both), with a pure-Go fallback for
// other architectures, the purego build tag and remainders. Elementwise
// results are identical on every path and do not depend on where in the
// slice a value lies: every path rounds each float32 operation separately
// (no fused multiply-add). Column sums accumulate in float64 on every path;
// only their summation order differs.

// unit is the number of float32 values the assembly kernels step by.
const unit = 16

// maxPeriod bounds the widened channel pattern used for C < 16 channels:
// lcm(C, 16) values, at most 15*16.
const maxPeriod = 240

// elemKernels is one instruction set's assembly kernels; see
// internal/elemgen for their contracts. A nil table entry means Go.
type elemKernels struct {
	name string

	addTo    func(dst, src *float32, n int)
	add      func(dst, a, b *float32, n int)
	mul      func(dst, a, b *float32, n int)
	relu     func(dst, src *float32, n int)
	reluGrad func(gx, gy, y *float32, n int)
	exp      func(dst, src *float32, n int)
	tanh     func(dst, src *float32, n int)
	log      func(dst, src *float32, n int)

	affineRows         func(dst, src, a, b *float32, rows, p, ld int)
	affineReluRows     func(dst, src, a, b *float32, rows, p, ld int)
	affineGradRows     func(gx, gy, x, k1, k2, k3 *float32, rows, p, ld int)
	affineReluGradRows func(gx, gy, y, x, k1, k2, k3 *float32, rows, p, ld int)
	affineGradRowsSet  func(gx, gy, x, k1, k2, k3 *float32, rows, p, ld int)
	affineReluGradSet  func(gx, gy, y, x, k1, k2, k3 *float32, rows, p, ld int)

	colSums          func(v *float32, rows, p, ld int, sum *float64)
	colMoments       func(v, w *float32, rows, p, ld int, sum, prod *float64)
	colMomentsMasked func(v, m, w *float32, rows, p, ld int, sum, prod *float64)
}

// genericElem is the pure-Go set.
var genericElem = &elemKernels{name: "generic"}

// elemList holds the kernel sets usable here, best first; architecture
// files add theirs in init.
var elemList = []*elemKernels{genericElem}

// currentElem is the set in use; nil means the best available.
var currentElem atomic.Pointer[elemKernels]

// elem returns the kernel set in use.
func elem() *elemKernels {
	if e := currentElem.Load(); e != nil {
		return e
	}
	return elemList[0]
}

// selectElem makes the elementwise kernels follow a SetMicroKernel choice:
// the set of the same name, or the best one when there is none.
func selectElem(name string) {
	for _, e := range elemList {
		if e.name == name {
			currentElem.Store(e)
			return
		}
	}
	currentElem.Store(nil)
}

// ElemKernel returns the name of the elementwise kernel set in use:
// "avx512", "avx2" or "generic". SetMicroKernel selects it along with the
// Sgemm micro-kernel of the same name.
func ElemKernel() string { return elem().name }

// mustLen panics unless every length in ns equals n.
func mustLen(op string, n int, ns ...int) {
	for _, m := range ns {
		if m != n {
			panic("kernels: " + op + ": slice lengths differ")
		}
	}
}

// AddTo sets dst[i] += src[i]. The slices must have equal lengths.
func AddTo(dst, src []float32) {
	n := len(dst)
	mustLen("AddTo", n, len(src))
	i := 0
	if f := elem().addTo; f != nil && n >= unit {
		i = n &^ (unit - 1)
		f(&dst[0], &src[0], i)
	}
	addToGo(dst[i:], src[i:n])
}

func addToGo(dst, src []float32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] += src[i]
	}
}

// Add sets dst[i] = a[i] + b[i]. The slices must have equal lengths; dst
// may be a or b.
func Add(dst, a, b []float32) {
	n := len(dst)
	mustLen("Add", n, len(a), len(b))
	i := 0
	if f := elem().add; f != nil && n >= unit {
		i = n &^ (unit - 1)
		f(&dst[0], &a[0], &b[0], i)
	}
	addGo(dst[i:], a[i:n], b[i:n])
}

func addGo(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + b[i]
	}
}

// Mul sets dst[i] = a[i] * b[i]. The slices must have equal lengths; dst
// may be a or b.
func Mul(dst, a, b []float32) {
	n := len(dst)
	mustLen("Mul", n, len(a), len(b))
	i := 0
	if f := elem().mul; f != nil && n >= unit {
		i = n &^ (unit - 1)
		f(&dst[0], &a[0], &b[0], i)
	}
	mulGo(dst[i:], a[i:n], b[i:n])
}

func mulGo(dst, a, b []float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] * b[i]
	}
}

// ReluForward sets dst[i] = max(src[i], 0), computed on the sign bit: -0
// and NaNs with the sign bit set give +0, other NaNs pass through. dst may
// be src.
func ReluForward(dst, src []float32) {
	n := len(dst)
	mustLen("ReluForward", n, len(src))
	i := 0
	if f := elem().relu; f != nil && n >= unit {
		i = n &^ (unit - 1)
		f(&dst[0], &src[0], i)
	}
	reluGo(dst[i:], src[i:n])
}

// reluBits is ReLU on the sign bit.
func reluBits(v float32) float32 {
	b := math.Float32bits(v)
	return math.Float32frombits(b &^ uint32(int32(b)>>31))
}

func reluGo(dst, src []float32) {
	src = src[:len(dst)]
	for i, v := range src {
		dst[i] = reluBits(v)
	}
}

// ReluBackward adds gy[i] to gx[i] where y[i] > 0, taking positive NaNs as
// positive (where the bits of y[i], as an int32, are positive), and +0
// elsewhere.
func ReluBackward(gx, gy, y []float32) {
	n := len(gx)
	mustLen("ReluBackward", n, len(gy), len(y))
	i := 0
	if f := elem().reluGrad; f != nil && n >= unit {
		i = n &^ (unit - 1)
		f(&gx[0], &gy[0], &y[0], i)
	}
	reluGradGo(gx[i:], gy[i:n], y[i:n])
}

// positive returns v where the bits of y, as an int32, are positive, and
// +0 elsewhere, without a branch (activations have random signs).
func positive(v, y float32) float32 {
	b := int32(math.Float32bits(y))
	m := uint32(((-b) &^ b) >> 31) // all ones exactly when b > 0
	return math.Float32frombits(math.Float32bits(v) & m)
}

func reluGradGo(gx, gy, y []float32) {
	gy, y = gy[:len(gx)], y[:len(gx)]
	for i := range gx {
		gx[i] += positive(gy[i], y[i])
	}
}

// lcm16 returns the least common multiple of c and 16.
func lcm16(c int) int {
	p := c
	for p%unit != 0 {
		p += c
	}
	return p
}

// rowsCheck panics unless every length in ns is n, a whole number of
// rows of c > 0 values, and returns the number of rows.
func rowsCheck(op string, c, n int, ns ...int) int {
	mustLen(op, n, ns...)
	if c == 0 {
		if n != 0 {
			panic("kernels: " + op + ": no channels")
		}
		return 0
	}
	if n%c != 0 {
		panic("kernels: " + op + ": length not a multiple of the channels")
	}
	return n / c
}

// AffineRows sets dst[r*C+j] = src[r*C+j]*a[j] + b[j] for the rows of
// C = len(a) channels of src (the product rounded to float32 before the
// sum). len(b) must be C, len(dst) and len(src) equal and a multiple of C;
// dst may be src.
func AffineRows(dst, src, a, b []float32) { affineRows("AffineRows", dst, src, a, b, false) }

// AffineReluRows is AffineRows followed by ReluForward.
func AffineReluRows(dst, src, a, b []float32) {
	affineRows("AffineReluRows", dst, src, a, b, true)
}

func affineRows(op string, dst, src, a, b []float32, relu bool) {
	c := len(a)
	mustLen(op, c, len(b))
	rows := rowsCheck(op, c, len(dst), len(src))
	if rows == 0 {
		return
	}
	e := elem()
	f := e.affineRows
	if relu {
		f = e.affineReluRows
	}
	r0 := 0
	switch {
	case f == nil:
	case c%unit == 0:
		f(&dst[0], &src[0], &a[0], &b[0], rows, c, c)
		return
	case c < unit:
		// Rows of lcm(c, 16) values with the channel pattern widened.
		p := lcm16(c)
		per := p / c
		if full := rows / per; full > 0 {
			var pa, pb [maxPeriod]float32
			for j := 0; j < p; j++ {
				pa[j], pb[j] = a[j%c], b[j%c]
			}
			f(&dst[0], &src[0], &pa[0], &pb[0], full, p, p)
			r0 = full * per
		}
	default:
		// The first c&^15 channels of every row, then the rest in Go.
		p := c &^ (unit - 1)
		f(&dst[0], &src[0], &a[0], &b[0], rows, p, c)
		for r := 0; r < rows; r++ {
			affineGo(dst[r*c+p:(r+1)*c], src[r*c+p:(r+1)*c], a[p:], b[p:], relu)
		}
		return
	}
	for r := r0; r < rows; r++ {
		affineGo(dst[r*c:(r+1)*c], src[r*c:(r+1)*c], a, b, relu)
	}
}

func affineGo(dst, src, a, b []float32, relu bool) {
	src, a, b = src[:len(dst)], a[:len(dst)], b[:len(dst)]
	for j, v := range src {
		y := float32(v*a[j]) + b[j]
		if relu {
			y = reluBits(y)
		}
		dst[j] = y
	}
}

// AffineGradRows adds k1[j]*gy + k2[j]*x + k3[j] to gx, elementwise over
// rows of C = len(k1) channels, rounding every operation to float32 in
// the order written: the input gradient of a per-channel affine map such
// as batch normalisation. Without accumulate it stores that value in gx
// instead, without reading gx (which may hold anything). k2 and k3 must
// have length C; gx, gy and x equal lengths, a multiple of C.
func AffineGradRows(gx, gy, x, k1, k2, k3 []float32, accumulate bool) {
	affineGradRows("AffineGradRows", gx, gy, nil, x, k1, k2, k3, accumulate)
}

// AffineReluGradRows is AffineGradRows with gy replaced by +0 wherever
// y > 0 fails (as in ReluBackward): the input gradient of a per-channel
// affine map followed by ReLU with output y. y must have the length of gx.
func AffineReluGradRows(gx, gy, y, x, k1, k2, k3 []float32, accumulate bool) {
	if y == nil {
		panic("kernels: AffineReluGradRows: nil y")
	}
	affineGradRows("AffineReluGradRows", gx, gy, y, x, k1, k2, k3, accumulate)
}

func affineGradRows(op string, gx, gy, y, x, k1, k2, k3 []float32, acc bool) {
	c := len(k1)
	mustLen(op, c, len(k2), len(k3))
	rows := rowsCheck(op, c, len(gx), len(gy), len(x))
	if y != nil {
		mustLen(op, len(gx), len(y))
	}
	if rows == 0 {
		return
	}
	e := elem()
	var f func(gx, gy, x, k1, k2, k3 *float32, rows, p, ld int)
	var fy func(gx, gy, y, x, k1, k2, k3 *float32, rows, p, ld int)
	switch {
	case y == nil && acc:
		f = e.affineGradRows
	case y == nil:
		f = e.affineGradRowsSet
	case acc:
		fy = e.affineReluGradRows
	default:
		fy = e.affineReluGradSet
	}
	call := func(rows, p, ld int, k1, k2, k3 *float32) bool {
		switch {
		case f != nil:
			f(&gx[0], &gy[0], &x[0], k1, k2, k3, rows, p, ld)
		case fy != nil:
			fy(&gx[0], &gy[0], &y[0], &x[0], k1, k2, k3, rows, p, ld)
		default:
			return false
		}
		return true
	}
	rowGo := func(r, j0 int) {
		lo, hi := r*c+j0, (r+1)*c
		var ys []float32
		if y != nil {
			ys = y[lo:hi]
		}
		affineGradGo(gx[lo:hi], gy[lo:hi], ys, x[lo:hi], k1[j0:], k2[j0:], k3[j0:], acc)
	}
	r0 := 0
	switch {
	case c%unit == 0:
		if call(rows, c, c, &k1[0], &k2[0], &k3[0]) {
			return
		}
	case c < unit:
		p := lcm16(c)
		per := p / c
		if full := rows / per; full > 0 {
			var q1, q2, q3 [maxPeriod]float32
			for j := 0; j < p; j++ {
				q1[j], q2[j], q3[j] = k1[j%c], k2[j%c], k3[j%c]
			}
			if call(full, p, p, &q1[0], &q2[0], &q3[0]) {
				r0 = full * per
			}
		}
	default:
		p := c &^ (unit - 1)
		if call(rows, p, c, &k1[0], &k2[0], &k3[0]) {
			for r := 0; r < rows; r++ {
				rowGo(r, p)
			}
			return
		}
	}
	for r := r0; r < rows; r++ {
		rowGo(r, 0)
	}
}

func affineGradGo(gx, gy, y, x, k1, k2, k3 []float32, acc bool) {
	n := len(gx)
	gy, x, k1, k2, k3 = gy[:n], x[:n], k1[:n], k2[:n], k3[:n]
	if y != nil {
		y = y[:n]
	}
	for j := range gx {
		g := gy[j]
		if y != nil {
			g = positive(g, y[j])
		}
		t := float32(k1[j]*g) + float32(k2[j]*x[j])
		t = float32(t) + k3[j]
		if acc {
			t += gx[j]
		}
		gx[j] = t
	}
}

// colBlockFloats bounds the values one column-kernel call covers, so the
// strips of 16 columns re-read a block from the L1 or L2 cache.
const colBlockFloats = 8192

// ColumnSums adds to sum[j] the sum of v[r*C+j] over the rows of
// C = len(sum) channels, accumulating in float64. len(v) must be a
// multiple of C.
func ColumnSums(sum []float64, v []float32) {
	columns("ColumnSums", sum, nil, v, nil, nil)
}

// ColumnMoments adds to sum[j] the sum of v[r*C+j] and to prod[j] the sum
// of v[r*C+j]*w[r*C+j] over the rows of C = len(sum) channels, in float64
// (so each product is exact). A nil w means v: the sums of squares. prod
// must have length C; v and w equal lengths, a multiple of C.
func ColumnMoments(sum, prod []float64, v, w []float32) {
	if w == nil {
		w = v
	}
	columns("ColumnMoments", sum, prod, v, nil, w)
}

// ColumnMomentsRelu is ColumnMoments with v replaced by +0 wherever y > 0
// fails (as in ReluBackward): the sums that the backward pass of a
// per-channel affine map followed by ReLU with output y needs. y must have
// the length of v; w must not be nil.
func ColumnMomentsRelu(sum, prod []float64, v, y, w []float32) {
	if y == nil || w == nil {
		panic("kernels: ColumnMomentsRelu: nil y or w")
	}
	columns("ColumnMomentsRelu", sum, prod, v, y, w)
}

// columns implements the column sums: of v masked by y > 0 when y is not
// nil, and with prod not nil also of that times w.
func columns(op string, sum, prod []float64, v, y, w []float32) {
	c := len(sum)
	rows := rowsCheck(op, c, len(v))
	if prod != nil {
		mustLen(op, c, len(prod))
		mustLen(op, len(v), len(w))
	}
	if y != nil {
		mustLen(op, len(v), len(y))
	}
	if rows == 0 {
		return
	}
	e := elem()
	// call runs the assembly kernel on rows starting at row r0 (in units of
	// the stride ld), or reports false when there is none.
	call := func(r0, rows, p, ld int, s, q *float64) bool {
		o := r0 * ld
		switch {
		case prod == nil:
			if e.colSums == nil {
				return false
			}
			e.colSums(&v[o], rows, p, ld, s)
		case y == nil:
			if e.colMoments == nil {
				return false
			}
			e.colMoments(&v[o], &w[o], rows, p, ld, s, q)
		default:
			if e.colMomentsMasked == nil {
				return false
			}
			e.colMomentsMasked(&v[o], &y[o], &w[o], rows, p, ld, s, q)
		}
		return true
	}
	// blocked runs call over all rows of ld values in blocks.
	blocked := func(total, p, ld int, s, q *float64) bool {
		blk := max(1, colBlockFloats/ld)
		for r := 0; r < total; r += blk {
			if !call(r, min(blk, total-r), p, ld, s, q) {
				return false
			}
		}
		return true
	}
	var q0 *float64
	r0, j0 := 0, 0
	switch {
	case c%unit == 0:
		if prod != nil {
			q0 = &prod[0]
		}
		if blocked(rows, c, c, &sum[0], q0) {
			return
		}
	case c < unit:
		// Rows of lcm(c, 16) values, folded back onto the channels.
		p := lcm16(c)
		per := p / c
		if full := rows / per; full > 0 {
			var ts, tq [maxPeriod]float64
			if blocked(full, p, p, &ts[0], &tq[0]) {
				for j := 0; j < p; j++ {
					sum[j%c] += ts[j]
					if prod != nil {
						prod[j%c] += tq[j]
					}
				}
				r0 = full * per
			}
		}
	default:
		p := c &^ (unit - 1)
		if prod != nil {
			q0 = &prod[0]
		}
		if blocked(rows, p, c, &sum[0], q0) {
			j0 = p
		}
	}
	for r := r0; r < rows; r++ {
		lo, hi := r*c+j0, (r+1)*c
		var ps []float64
		var ys, ws []float32
		if prod != nil {
			ps, ws = prod[j0:], w[lo:hi]
		}
		if y != nil {
			ys = y[lo:hi]
		}
		columnsGo(sum[j0:], ps, v[lo:hi], ys, ws)
	}
}

// columnsGo adds one row's values vs (masked by ys when not nil) to sum,
// and their products with ws to prod when prod is not nil.
func columnsGo(sum, prod []float64, vs, ys, ws []float32) {
	sum = sum[:len(vs)]
	if ys != nil {
		ys = ys[:len(vs)]
	}
	if prod != nil {
		prod, ws = prod[:len(vs)], ws[:len(vs)]
	}
	for j, a := range vs {
		if ys != nil {
			a = positive(a, ys[j])
		}
		sum[j] += float64(a)
		if prod != nil {
			prod[j] += float64(a) * float64(ws[j])
		}
	}
}
