// Package tensor is flowood's engine: contiguous float32 tensors with
// reverse-mode automatic differentiation, specialised for normalizing flows.
//
// Layout. Images are NHWC: a batch of N images of height H, width W and C
// channels has Shape [N, H, W, C] and element (n, h, w, c) at
// ((n*H+h)*W+w)*C+c. NHWC makes a 1x1 convolution a plain GEMM with no
// copy, keeps per-channel operations (bias, batch norm, per-channel scale)
// contiguous in the innermost loop, and lets the convolutions choose by
// shape among Winograd F(2x2, 3x3) and F(4x4, 3x3) (3x3 with 16 channels
// and more: batched GEMMs per transformed tile position), implicit GEMM
// (patches read in place) and im2col (see convAlgo). Tabular data is
// [N, D]. Convolution weights are HWIO: [KH, KW, Cin, Cout].
//
// Autodiff. Every operation whose inputs require gradients records a node
// holding its inputs and a backward closure; Backward(loss) visits nodes in
// reverse topological order and accumulates into Grad. Parameters are
// created with Param; constants (data, masks) never require gradients.
//
// Passes. Whether operations record, how many goroutines each may use
// and which intermediates to recycle belong to a Pass, carried by the
// tensors: an operation runs in the pass of its first input that has one,
// and tensors without one (data and parameters) are in the default pass,
// which records. Evaluation gives its input to a gradient-free pass
// (GradFree().Input(x)) and closes the pass when it has read the result;
// nothing is process-wide, so goroutines may evaluate one model at once,
// each in its own pass, beside training.
//
// Memory. Intermediates take their buffers from a pool and hand them back
// when the last tensor holding them (the one an operation made, and the
// views that share it) lets go: Done in a gradient-free pass, the pass's
// Close, or Backward. A buffer a view still uses is never recycled.
//
// Precision. Values are float32; reductions that become per-example
// log-likelihoods (SumPerExample, batch-norm statistics) accumulate in
// float64.
package tensor
