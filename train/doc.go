// Package train fits density models by maximum likelihood on dequantised
// images: the loop, optimisers, gradient clipping, the training log, and
// checkpoints with exact resume.
package train
