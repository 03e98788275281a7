//go:build !purego

package kernels

//go:generate go run ./internal/asmgen -out gemm_amd64.s -stubs gemm_stub_amd64.go -pkg kernels

// asmKernel adapts a pair of assembly micro-kernels, one reading A as
// a[i + p*lda] and one as a[i*lda + p], to the slice-based kernel
// signature. It checks the slice bounds so the assembly cannot run past
// them.
func asmKernel(mr, nr int, colForm, rowForm func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)) func(kc int, a []float32, ars, acs int, b, c []float32, ldc int, alpha, beta float32) {
	return func(kc int, a []float32, ars, acs int, b, c []float32, ldc int, alpha, beta float32) {
		_ = a[(mr-1)*ars+(kc-1)*acs]
		_ = b[kc*nr-1]
		_ = c[(mr-1)*ldc+nr-1]
		if ars == 1 {
			colForm(kc, &a[0], acs, &b[0], &c[0], ldc, alpha, beta)
		} else {
			rowForm(kc, &a[0], ars, &b[0], &c[0], ldc, alpha, beta)
		}
	}
}

// asmLoop adapts a pair of looping assembly micro-kernels (the L
// variants, loopSig in internal/asmgen) like asmKernel, checking the
// bounds of the last tile.
func asmLoop(mr, nr int, colForm, rowForm func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, tiles, astep int)) func(kc int, a []float32, ars, acs int, b, c []float32, ldc int, alpha, beta float32, tiles, astep int) {
	return func(kc int, a []float32, ars, acs int, b, c []float32, ldc int, alpha, beta float32, tiles, astep int) {
		if tiles < 1 || astep < 0 {
			panic("kernels: micro-kernel loop over no tiles")
		}
		_ = a[(tiles-1)*astep+(mr-1)*ars+(kc-1)*acs]
		_ = b[kc*nr-1]
		_ = c[(tiles*mr-1)*ldc+nr-1]
		if ars == 1 {
			colForm(kc, &a[0], acs, &b[0], &c[0], ldc, alpha, beta, tiles, astep)
		} else {
			rowForm(kc, &a[0], ars, &b[0], &c[0], ldc, alpha, beta, tiles, astep)
		}
	}
}

// asmSegLoop adapts a segmented looping assembly micro-kernel (the LS
// variants, segSig in internal/asmgen, reading A in place row by row),
// checking the bounds of the last tile.
func asmSegLoop(mr, nr int, fn func(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32, tiles, astep, nseg, segstep int)) func(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32, tiles, astep, nseg, segstep int) {
	return func(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32, tiles, astep, nseg, segstep int) {
		if tiles < 1 || nseg < 1 || kc < 1 || astep < 0 || segstep < 0 {
			panic("kernels: segmented micro-kernel loop over nothing")
		}
		_ = a[(tiles-1)*astep+(mr-1)*lda+(nseg-1)*segstep+kc-1]
		_ = b[nseg*kc*nr-1]
		_ = c[(tiles*mr-1)*ldc+nr-1]
		fn(kc, &a[0], lda, &b[0], &c[0], ldc, alpha, beta, tiles, astep, nseg, segstep)
	}
}

var (
	avx512Narrow = &microKernel{
		name: "avx512",
		mr:   28, nr: 16,
		kc: 256, mc: 112,
		fn:      asmKernel(28, 16, sgemmAVX512x28x16P, sgemmAVX512x28x16R),
		loop:    asmLoop(28, 16, sgemmAVX512x28x16PL, sgemmAVX512x28x16RL),
		segLoop: asmSegLoop(28, 16, sgemmAVX512x28x16RLS),
		direct:  true, kcDirect: 768, mcDirect: 112,
	}
	avx512Square = &microKernel{
		name: "avx512",
		mr:   16, nr: 16,
		kc: 256, mc: 112,
		fn:      asmKernel(16, 16, sgemmAVX512x16x16P, sgemmAVX512x16x16R),
		loop:    asmLoop(16, 16, sgemmAVX512x16x16PL, sgemmAVX512x16x16RL),
		segLoop: asmSegLoop(16, 16, sgemmAVX512x16x16RLS),
		direct:  true, kcDirect: 768, mcDirect: 112,
		cost: 15,
	}
	avx512x8 = &microKernel{
		name: "avx512",
		mr:   8, nr: 32,
		kc: 256, mc: 112,
		fn:      asmKernel(8, 32, sgemmAVX512x8x32P, sgemmAVX512x8x32R),
		loop:    asmLoop(8, 32, sgemmAVX512x8x32PL, sgemmAVX512x8x32RL),
		segLoop: asmSegLoop(8, 32, sgemmAVX512x8x32RLS),
		direct:  true, kcDirect: 768, mcDirect: 112,
		cost: 11,
	}
	avx512x28x8 = &microKernel{
		name: "avx512",
		mr:   28, nr: 8,
		kc: 256, mc: 112,
		fn:      asmKernel(28, 8, sgemmAVX512x28x8P, sgemmAVX512x28x8R),
		loop:    asmLoop(28, 8, sgemmAVX512x28x8PL, sgemmAVX512x28x8RL),
		segLoop: asmSegLoop(28, 8, sgemmAVX512x28x8RLS),
		direct:  true, kcDirect: 768, mcDirect: 112,
		cost: 12,
	}
	avx512Kernel = &microKernel{
		name: "avx512",
		mr:   14, nr: 32,
		kc: 256, mc: 112,
		fn:      asmKernel(14, 32, sgemmAVX512x14x32P, sgemmAVX512x14x32R),
		loop:    asmLoop(14, 32, sgemmAVX512x14x32PL, sgemmAVX512x14x32RL),
		segLoop: asmSegLoop(14, 32, sgemmAVX512x14x32RLS),
		direct:  true, kcDirect: 768, mcDirect: 112,
		narrow: avx512Narrow,
		others: []*microKernel{avx512Square, avx512x8, avx512x28x8},
	}
	avx2Kernel = &microKernel{
		name: "avx2",
		mr:   6, nr: 16,
		kc: 256, mc: 96,
		fn:      asmKernel(6, 16, sgemmAVX2x6x16P, sgemmAVX2x6x16R),
		loop:    asmLoop(6, 16, sgemmAVX2x6x16PL, sgemmAVX2x6x16RL),
		segLoop: asmSegLoop(6, 16, sgemmAVX2x6x16RLS),
		direct:  true, kcDirect: 768, mcDirect: 96,
	}
)

// init puts the assembly micro-kernels the CPU supports ahead of the
// generic one.
func init() {
	hasAVX2, hasAVX512 := cpuFeatures()
	var list []*microKernel
	if hasAVX512 {
		list = append(list, avx512Kernel)
	}
	if hasAVX2 {
		list = append(list, avx2Kernel)
	}
	kernelList = append(list, kernelList...)
}

// cpuFeatures reports whether the CPU and operating system support AVX2
// with FMA, and AVX-512 F/DQ/BW/VL.
func cpuFeatures() (avx2, avx512 bool) {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false, false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false, false
	}
	xcr0, _ := xgetbv()
	const (
		ymmState = 0x6  // SSE and AVX state
		zmmState = 0xe0 // opmask, ZMM0-15 upper halves, ZMM16-31
	)
	if xcr0&ymmState != ymmState {
		return false, false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	const (
		avx2Bit   = 1 << 5
		avx512F   = 1 << 16
		avx512DQ  = 1 << 17
		avx512BW  = 1 << 30
		avx512VL  = 1 << 31
		avx512All = avx512F | avx512DQ | avx512BW | avx512VL
	)
	avx2 = ebx7&avx2Bit != 0
	avx512 = avx2 && xcr0&zmmState == zmmState && ebx7&avx512All == avx512All
	return avx2, avx512
}
