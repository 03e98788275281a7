package flow

import "github.com/flowood/flowood/tensor"

// Rearranger is a bijector that moves values around (squeezes space into
// channels, splits off and flattens) besides or instead of transforming
// them. Unarrange undoes only the moving: it maps a tensor in the layout
// of Forward's output back to the layout of Forward's input, values
// unchanged. Over a whole flow this is the paper's unsqueeze(z) (App. G):
// the latent shown in the image's shape.
type Rearranger interface {
	// Arrange moves values as Forward does, without transforming them.
	Arrange(x *tensor.Tensor) *tensor.Tensor
	// Unarrange undoes Arrange.
	Unarrange(z *tensor.Tensor) *tensor.Tensor
}

// Arrange maps x, in the layout of b's input, to the layout of b's
// output, doing only b's rearrangements (the inverse of Unarrange).
func Arrange(b Bijector, x *tensor.Tensor) *tensor.Tensor {
	switch t := b.(type) {
	case Chain:
		for _, step := range t {
			x = Arrange(step, x)
		}
		return x
	case *Recompute:
		return Arrange(t.Chain, x)
	case Rearranger:
		return t.Arrange(x)
	}
	return x
}

// Unarrange maps z, in the layout of b's output, to the layout of b's
// input, undoing every rearrangement (Rearranger) of b's steps in reverse
// order and leaving values as they are: steps that only transform values
// (couplings, the logit, actnorm, 1x1 convolutions) keep the layout.
func Unarrange(b Bijector, z *tensor.Tensor) *tensor.Tensor {
	switch t := b.(type) {
	case Chain:
		for i := len(t) - 1; i >= 0; i-- {
			z = Unarrange(t[i], z)
		}
		return z
	case *Recompute:
		return Unarrange(t.Chain, z)
	case Rearranger:
		return t.Unarrange(z)
	}
	return z
}

// Unarrange returns the latent z of Forward in the layout of the flow's
// input (Unarrange of its bijector): unsqueeze(z).
func (f Flow) Unarrange(z *tensor.Tensor) *tensor.Tensor { return Unarrange(f.Bijector, z) }

// Arrange maps an array in the layout of the flow's input to the layout
// of its latent (Arrange of its bijector), the inverse of Unarrange.
func (f Flow) Arrange(x *tensor.Tensor) *tensor.Tensor { return Arrange(f.Bijector, x) }
