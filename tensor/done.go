package tensor

// Done declares that the intermediate tensors ts will not be used again.
// Without gradient recording (NoGrad) their buffers are recycled at once,
// which keeps the peak memory of evaluation at a few activations instead
// of a whole forward pass; with recording it does nothing, since the
// backward pass may need them (Backward recycles them itself). Tensors
// that do not own their buffer (inputs, parameters, views) are left alone,
// so a layer may call Done on any value it created and no longer needs.
func Done(ts ...*Tensor) {
	if GradEnabled() {
		return
	}
	for _, t := range ts {
		Release(t)
	}
}
