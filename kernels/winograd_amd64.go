//go:build !purego

package kernels

// The Winograd tile kernels are called directly, not through a function
// value, so that the pointer tables stay on the caller's stack.

// winoInAsm runs the input transform of e's instruction set on n
// channels (a multiple of 16) and reports whether e has one.
func winoInAsm(e *elemKernels, d, s *[16]*float32, n int) bool {
	switch e {
	case avx512Elem:
		winoInAVX512(d, s, n)
	case avx2Elem:
		winoInAVX2(d, s, n)
	default:
		return false
	}
	return true
}

// winoOutAsm is winoInAsm for the output transform.
func winoOutAsm(e *elemKernels, d *[4]*float32, s *[16]*float32, n int, add bool) bool {
	switch {
	case e == avx512Elem && add:
		winoOutAddAVX512(d, s, n)
	case e == avx512Elem:
		winoOutAVX512(d, s, n)
	case e == avx2Elem && add:
		winoOutAddAVX2(d, s, n)
	case e == avx2Elem:
		winoOutAVX2(d, s, n)
	default:
		return false
	}
	return true
}

// winoGradAsm is winoInAsm for the output-gradient transform.
func winoGradAsm(e *elemKernels, d *[16]*float32, s *[4]*float32, n int) bool {
	switch e {
	case avx512Elem:
		winoGradAVX512(d, s, n)
	case avx2Elem:
		winoGradAVX2(d, s, n)
	default:
		return false
	}
	return true
}
