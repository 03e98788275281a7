package nn

import (
	"fmt"

	"github.com/flowood/flowood/tensor"
)

// ResNet is the st-network of RealNVP's coupling layers (Dinh et al. 2016,
// App. E of Kirichenko et al. 2020), mapping [N, H, W, In] to
// [N, H, W, Out]:
//
//	h = relu(concat(d*BN(x), -d*BN(x)))     d = 2 when DoubleAfterNorm
//	h = conv3x3(h); skip = conv1x1(h)
//	for each block: h = h + conv3x3(relu(BN(conv3x3(relu(BN(h)))))); skip += conv1x1(h)
//	y = conv1x1(relu(BN(skip)))             (zero-initialised)
//
// The extra skip connections from every block to the output follow the
// reference RealNVP code.
type ResNet struct {
	InNorm          *BatchNorm
	InConv, InSkip  *Conv2D
	Blocks          []*ResBlock
	Skips           []*Conv2D
	OutNorm         *BatchNorm
	OutConv         *Conv2D
	DoubleAfterNorm bool
	// Act is the activation written relu above; NewResNet sets tensor.Relu.
	Act func(*tensor.Tensor) *tensor.Tensor
}

// ResBlock is x + conv(relu(BN(conv(relu(BN(x)))))) with 3x3 convolutions.
type ResBlock struct {
	Norm1, Norm2 *BatchNorm
	Conv1, Conv2 *Conv2D
}

// NewResNet returns an st-network with the given input, hidden and output
// channels and number of residual blocks; mode governs its batch norms.
func NewResNet(rng *tensor.RNG, in, mid, out, blocks int, doubleAfterNorm bool, mode *Mode) *ResNet {
	if in <= 0 || mid <= 0 || out <= 0 || blocks < 0 {
		panic(fmt.Sprintf("nn: NewResNet(in=%d, mid=%d, out=%d, blocks=%d)", in, mid, out, blocks))
	}
	r := &ResNet{
		InNorm:          NewBatchNorm(in, mode),
		InConv:          NewConv2D(rng, 3, 2*in, mid, true, false),
		InSkip:          NewConv2D(rng, 1, mid, mid, true, false),
		OutNorm:         NewBatchNorm(mid, mode),
		OutConv:         NewConv2D(rng, 1, mid, out, true, true),
		DoubleAfterNorm: doubleAfterNorm,
		Act:             tensor.Relu,
	}
	for i := 0; i < blocks; i++ {
		r.Blocks = append(r.Blocks, &ResBlock{
			Norm1: NewBatchNorm(mid, mode),
			Conv1: NewConv2D(rng, 3, mid, mid, false, false),
			Norm2: NewBatchNorm(mid, mode),
			Conv2: NewConv2D(rng, 3, mid, mid, true, false),
		})
		r.Skips = append(r.Skips, NewConv2D(rng, 1, mid, mid, true, false))
	}
	return r
}

// Forward applies the network.
func (r *ResNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	x = r.InNorm.Forward(x)
	if r.DoubleAfterNorm {
		x = tensor.Scale(x, 2)
	}
	x = r.Act(tensor.Concat(x, tensor.Neg(x)))
	x = r.InConv.Forward(x)
	skip := r.InSkip.Forward(x)
	for i, b := range r.Blocks {
		x = b.forward(x, r.Act)
		skip = tensor.Add(skip, r.Skips[i].Forward(x))
	}
	return r.OutConv.Forward(r.Act(r.OutNorm.Forward(skip)))
}

// forward applies the block with activation act.
func (b *ResBlock) forward(x *tensor.Tensor, act func(*tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
	h := b.Conv1.Forward(act(b.Norm1.Forward(x)))
	h = b.Conv2.Forward(act(b.Norm2.Forward(h)))
	return tensor.Add(x, h)
}

// Visit implements Module.
func (r *ResNet) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	r.InNorm.Visit(Join(prefix, "in_norm"), fn)
	r.InConv.Visit(Join(prefix, "in_conv"), fn)
	r.InSkip.Visit(Join(prefix, "in_skip"), fn)
	for i, b := range r.Blocks {
		p := Join(prefix, fmt.Sprintf("blocks.%d", i))
		b.Norm1.Visit(Join(p, "in_norm"), fn)
		b.Conv1.Visit(Join(p, "in_conv"), fn)
		b.Norm2.Visit(Join(p, "out_norm"), fn)
		b.Conv2.Visit(Join(p, "out_conv"), fn)
		r.Skips[i].Visit(Join(prefix, fmt.Sprintf("skips.%d", i)), fn)
	}
	r.OutNorm.Visit(Join(prefix, "out_norm"), fn)
	r.OutConv.Visit(Join(prefix, "out_conv"), fn)
}
