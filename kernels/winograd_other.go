//go:build !amd64 || purego

package kernels

// Without assembly every Winograd tile transform runs in Go.

func winoInAsm(*elemKernels, *[16]*float32, *[16]*float32, int, tileRun) bool         { return false }
func winoOutAsm(*elemKernels, *[4]*float32, *[16]*float32, int, tileRun, bool) bool   { return false }
func winoGradAsm(*elemKernels, *[16]*float32, *[4]*float32, int, tileRun) bool        { return false }
func wino4InAsm(*elemKernels, *[36]*float32, *[36]*float32, int, tileRun) bool        { return false }
func wino4OutAsm(*elemKernels, *[16]*float32, *[36]*float32, int, tileRun, bool) bool { return false }
func wino4GradAsm(*elemKernels, *[36]*float32, *[16]*float32, int, tileRun) bool      { return false }
