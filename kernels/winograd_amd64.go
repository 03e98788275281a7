//go:build !purego

package kernels

// The Winograd tile kernels are called directly, not through a function
// value, so that the pointer tables stay on the caller's stack.

// winoInAsm runs the input transform of e's instruction set on n
// channels (a multiple of 16) of the run r of tiles and reports whether e
// has one.
func winoInAsm(e *elemKernels, d, s *[16]*float32, n int, r tileRun) bool {
	switch e {
	case avx512Elem:
		winoInAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case avx2Elem:
		winoInAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	default:
		return false
	}
	return true
}

// winoOutAsm is winoInAsm for the output transform.
func winoOutAsm(e *elemKernels, d *[4]*float32, s *[16]*float32, n int, r tileRun, add bool) bool {
	switch {
	case e == avx512Elem && add:
		winoOutAddAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case e == avx512Elem:
		winoOutAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case e == avx2Elem && add:
		winoOutAddAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	case e == avx2Elem:
		winoOutAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	default:
		return false
	}
	return true
}

// winoGradAsm is winoInAsm for the output-gradient transform.
func winoGradAsm(e *elemKernels, d *[16]*float32, s *[4]*float32, n int, r tileRun) bool {
	switch e {
	case avx512Elem:
		winoGradAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case avx2Elem:
		winoGradAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	default:
		return false
	}
	return true
}

// wino4InAsm, wino4OutAsm and wino4GradAsm are the F(4x4, 3x3) versions.
func wino4InAsm(e *elemKernels, d, s *[36]*float32, n int, r tileRun) bool {
	switch e {
	case avx512Elem:
		wino4InAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case avx2Elem:
		wino4InAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	default:
		return false
	}
	return true
}

func wino4OutAsm(e *elemKernels, d *[16]*float32, s *[36]*float32, n int, r tileRun, add bool) bool {
	switch {
	case e == avx512Elem && add:
		wino4OutAddAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case e == avx512Elem:
		wino4OutAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case e == avx2Elem && add:
		wino4OutAddAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	case e == avx2Elem:
		wino4OutAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	default:
		return false
	}
	return true
}

func wino4GradAsm(e *elemKernels, d *[36]*float32, s *[16]*float32, n int, r tileRun) bool {
	switch e {
	case avx512Elem:
		wino4GradAVX512(d, s, n, r.tiles, r.sstep, r.dstep)
	case avx2Elem:
		wino4GradAVX2(d, s, n, r.tiles, r.sstep, r.dstep)
	default:
		return false
	}
	return true
}
