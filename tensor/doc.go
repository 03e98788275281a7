// Package tensor is flowood's engine: contiguous float32 tensors with
// reverse-mode automatic differentiation, specialised for normalizing flows.
//
// Layout. Images are NHWC: a batch of N images of height H, width W and C
// channels has Shape [N, H, W, C] and element (n, h, w, c) at
// ((n*H+h)*W+w)*C+c. NHWC makes a 3x3 convolution one GEMM of shape
// [N*H*W, 9*Cin] x [9*Cin, Cout] (the shape the kernels are tuned for), a 1x1
// convolution a plain GEMM with no copy, and per-channel operations (bias,
// batch norm, per-channel scale) contiguous in the innermost loop.
// Tabular data is [N, D]. Convolution weights are HWIO: [KH, KW, Cin, Cout].
//
// Autodiff. Every operation whose inputs require gradients records a node
// holding its inputs and a backward closure; Backward(loss) visits nodes in
// reverse topological order and accumulates into Grad. Parameters are
// created with Param; constants (data, masks) never require gradients.
// NoGrad turns recording off (evaluation), and is process-wide: do not
// train and evaluate concurrently in one process.
//
// Precision. Values are float32; reductions that become per-example
// log-likelihoods (SumPerExample, batch-norm statistics) accumulate in
// float64.
package tensor
