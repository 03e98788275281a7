//go:build !purego

package kernels

//go:generate go run ./internal/elemgen -out elem_amd64.s -stubs elem_stub_amd64.go -pkg kernels

var (
	avx512Elem = &elemKernels{
		name:               "avx512",
		addTo:              addToAVX512,
		add:                addAVX512,
		mul:                mulAVX512,
		relu:               reluAVX512,
		reluGrad:           reluGradAVX512,
		exp:                expAVX512,
		tanh:               tanhAVX512,
		log:                logAVX512,
		affineRows:         affineRowsAVX512,
		affineReluRows:     affineReluRowsAVX512,
		affineGradRows:     affineGradRowsAVX512,
		affineReluGradRows: affineReluGradRowsAVX512,
		affineGradRowsSet:  affineGradRowsSetAVX512,
		affineReluGradSet:  affineReluGradRowsSetAVX512,
		colSums:            colSumsAVX512,
		colMoments:         colMomentsAVX512,
		colMomentsMasked:   colMomentsMaskedAVX512,
	}
	avx2Elem = &elemKernels{
		name:               "avx2",
		addTo:              addToAVX2,
		add:                addAVX2,
		mul:                mulAVX2,
		relu:               reluAVX2,
		reluGrad:           reluGradAVX2,
		exp:                expAVX2,
		tanh:               tanhAVX2,
		log:                logAVX2,
		affineRows:         affineRowsAVX2,
		affineReluRows:     affineReluRowsAVX2,
		affineGradRows:     affineGradRowsAVX2,
		affineReluGradRows: affineReluGradRowsAVX2,
		affineGradRowsSet:  affineGradRowsSetAVX2,
		affineReluGradSet:  affineReluGradRowsSetAVX2,
		colSums:            colSumsAVX2,
		colMoments:         colMomentsAVX2,
		colMomentsMasked:   colMomentsMaskedAVX2,
	}
)

// init puts the assembly elementwise kernels the CPU supports ahead of
// the Go ones, under the names of the Sgemm micro-kernels for the same
// instruction sets.
func init() {
	hasAVX2, hasAVX512 := cpuFeatures()
	var list []*elemKernels
	if hasAVX512 {
		list = append(list, avx512Elem)
	}
	if hasAVX2 {
		list = append(list, avx2Elem)
	}
	elemList = append(list, elemList...)
}
