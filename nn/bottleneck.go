package nn

import (
	"fmt"

	"github.com/flowood/flowood/tensor"
)

// Bottleneck is the st-network bottleneck of App. K of Kirichenko et al.
// (2020): a pair of fully connected layers that project each example's
// whole feature map, flattened, to dimension L and back,
//
//	y = reshape(Up(Down(flatten(x))))    Down: H·W·C -> L, Up: L -> H·W·C
//
// with no activation between them, as the reference code's ResNetAE. A
// small L keeps the st-network from copying its input to its output.
type Bottleneck struct {
	Down, Up *Linear
	// Shape is the [H, W, C] of one example's feature map.
	Shape [3]int
}

// NewBottleneck returns a bottleneck of dimension l for feature maps of
// h x w x c, initialised as PyTorch's nn.Linear. It panics on
// non-positive sizes.
func NewBottleneck(rng *tensor.RNG, h, w, c, l int) *Bottleneck {
	if h <= 0 || w <= 0 || c <= 0 || l <= 0 {
		panic(fmt.Sprintf("nn: NewBottleneck(%dx%dx%d, l=%d)", h, w, c, l))
	}
	d := h * w * c
	return &Bottleneck{Down: NewLinear(rng, d, l, false), Up: NewLinear(rng, l, d, false), Shape: [3]int{h, w, c}}
}

// Forward applies the bottleneck to x of shape [N, H, W, C].
func (b *Bottleneck) Forward(x *tensor.Tensor) *tensor.Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != b.Shape[0] || x.Shape[2] != b.Shape[1] || x.Shape[3] != b.Shape[2] {
		panic(fmt.Sprintf("nn: bottleneck for %v applied to %v", b.Shape, x.Shape))
	}
	n := x.Shape[0]
	flat := tensor.Reshape(x, n, b.Shape[0]*b.Shape[1]*b.Shape[2])
	lo := b.Down.Forward(flat)
	tensor.Done(flat)
	hi := b.Up.Forward(lo)
	tensor.Done(lo)
	y := tensor.Reshape(hi, n, b.Shape[0], b.Shape[1], b.Shape[2])
	tensor.Done(hi)
	return y
}

// Visit implements Module.
func (b *Bottleneck) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	b.Down.Visit(Join(prefix, "down"), fn)
	b.Up.Visit(Join(prefix, "up"), fn)
}
