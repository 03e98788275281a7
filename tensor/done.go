package tensor

// Done declares that the intermediate tensors ts will not be used again.
// In a gradient-free pass each lets go of its buffer at once (recycled
// when no view shares it), which keeps the peak memory of evaluation at a
// few activations instead of a whole forward pass; in a recording pass it
// does nothing, since the backward pass may need them (Backward lets go of
// them itself). Tensors that hold no pooled buffer (inputs, parameters)
// are left alone, so a layer may call Done on any value it made and no
// longer needs.
func Done(ts ...*Tensor) {
	for _, t := range ts {
		if t == nil || t.node != nil || t.pass.Grad() {
			continue
		}
		t.drop()
	}
}
