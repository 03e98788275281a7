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
//	y = conv1x1(relu(BN(skip)))
//
// The extra skip connections from every block to the output follow the
// reference RealNVP code, and so, with ResNetOptions.WeightNorm, do its
// weight-normalised convolutions. Without them (ResNetOptions.NoSkip, the
// App. K baseline) the output is y = conv1x1(relu(BN(h))) of the last h;
// with a bottleneck (ResNetOptions.Bottleneck, App. K) also, and the
// bottleneck maps h after the middle block: after blocks/2 blocks (the
// reference code's ResNetAE; with one block, where the reference inserts
// none, right after the input convolution).
type ResNet struct {
	InNorm          *BatchNorm
	InConv, InSkip  *Conv2D
	Blocks          []*ResBlock
	Skips           []*Conv2D
	OutNorm         *BatchNorm
	OutConv         *Conv2D
	DoubleAfterNorm bool
	// Bottleneck, when set, follows block BottleneckAfter-1 (the input
	// convolution when BottleneckAfter is 0); such a network has no skip
	// connections (InSkip and Skips nil).
	Bottleneck      *Bottleneck
	BottleneckAfter int
	// Act is the activation written relu above. nil, as NewResNet sets it,
	// means ReLU, computed together with the batch norm before it as one
	// operation (tensor.BatchNormReLU) where there is one, and with the
	// concatenation of the input layer (tensor.CReLU). Any other function,
	// tensor.Relu included, is applied as a separate operation.
	Act func(*tensor.Tensor) *tensor.Tensor
}

// ResBlock is x + conv(relu(BN(conv(relu(BN(x)))))) with 3x3 convolutions.
// In gradient-free passes its forward may return x itself, with the sum
// formed in x's buffer (tensor.AddConv2D).
type ResBlock struct {
	Norm1, Norm2 *BatchNorm
	Conv1, Conv2 *Conv2D
}

// ResNetOptions says how NewResNet builds and initialises the
// convolutions. The zero value gives plain convolutions, all initialised
// as PyTorch initialises them by default.
type ResNetOptions struct {
	// WeightNorm weight-normalises every convolution (NewWNConv2D), as the
	// reference code's WNConv2d does.
	WeightNorm bool
	// OutInit initialises the output convolution.
	OutInit OutInit
	// NoSkip leaves out the skip connections from every block to the
	// output (InSkip, Skips).
	NoSkip bool
	// Bottleneck, when positive, inserts a Bottleneck of that dimension
	// after the middle block, for feature maps of Height x Width (both
	// then required); it implies NoSkip, since skip connections would
	// carry the input around it.
	Bottleneck    int
	Height, Width int
}

// OutInit says how the output convolution of a ResNet starts.
type OutInit string

const (
	// OutInitPyTorch, also "", initialises it as the other convolutions
	// (PyTorch's default; the reference code without --init_zeros).
	OutInitPyTorch OutInit = "pytorch"
	// OutInitZero makes its kernel and bias zero, so the network outputs
	// zero and a coupling starts as the identity. With weight norm the
	// gain is zero and the direction is drawn as usual.
	OutInitZero OutInit = "zero"
	// OutInitZeroBias makes only its bias zero: what the reference code's
	// --init_zeros achieves, since it zeroes the weight that
	// torch.nn.utils.weight_norm recomputes from weight_g and weight_v
	// before every forward pass.
	OutInitZeroBias OutInit = "zero_bias"
)

// Valid reports whether o is a known initialisation ("" included).
func (o OutInit) Valid() bool {
	switch o {
	case "", OutInitPyTorch, OutInitZero, OutInitZeroBias:
		return true
	}
	return false
}

// NewResNet returns an st-network with the given input, hidden and output
// channels and number of residual blocks; mode governs its batch norms.
// opts, at most one, says how to build the convolutions; without it the
// network is the one NewResNet built before it took options: plain
// convolutions, the output one zero (ResNetOptions{OutInit: OutInitZero}).
// It panics on non-positive sizes, an unknown OutInit or several opts.
func NewResNet(rng *tensor.RNG, in, mid, out, blocks int, doubleAfterNorm bool, mode *Mode, opts ...ResNetOptions) *ResNet {
	opt := ResNetOptions{OutInit: OutInitZero}
	if len(opts) > 0 {
		opt = opts[0]
	}
	if in <= 0 || mid <= 0 || out <= 0 || blocks < 0 || !opt.OutInit.Valid() || len(opts) > 1 ||
		opt.Bottleneck < 0 || (opt.Bottleneck > 0 && (opt.Height <= 0 || opt.Width <= 0)) {
		panic(fmt.Sprintf("nn: NewResNet(in=%d, mid=%d, out=%d, blocks=%d, out init %q, bottleneck %d for %dx%d)",
			in, mid, out, blocks, opt.OutInit, opt.Bottleneck, opt.Height, opt.Width))
	}
	skip := !opt.NoSkip && opt.Bottleneck == 0
	conv := func(k, cin, cout int, bias bool) *Conv2D {
		if opt.WeightNorm {
			return NewWNConv2D(rng, k, cin, cout, bias, false, false)
		}
		return NewConv2D(rng, k, cin, cout, bias, false)
	}
	r := &ResNet{
		InNorm:          NewBatchNorm(in, mode),
		InConv:          conv(3, 2*in, mid, true),
		OutNorm:         NewBatchNorm(mid, mode),
		DoubleAfterNorm: doubleAfterNorm,
	}
	if skip {
		r.InSkip = conv(1, mid, mid, true)
	}
	zero, zeroBias := opt.OutInit == OutInitZero, opt.OutInit == OutInitZeroBias
	if opt.WeightNorm {
		r.OutConv = NewWNConv2D(rng, 1, mid, out, true, zero, zero || zeroBias)
	} else {
		r.OutConv = NewConv2D(rng, 1, mid, out, true, zero)
		if zeroBias {
			clear(r.OutConv.B.Data)
		}
	}
	for i := 0; i < blocks; i++ {
		r.Blocks = append(r.Blocks, &ResBlock{
			Norm1: NewBatchNorm(mid, mode),
			Conv1: conv(3, mid, mid, false),
			Norm2: NewBatchNorm(mid, mode),
			Conv2: conv(3, mid, mid, true),
		})
		if skip {
			r.Skips = append(r.Skips, conv(1, mid, mid, true))
		}
	}
	if opt.Bottleneck > 0 {
		r.Bottleneck = NewBottleneck(rng, opt.Height, opt.Width, mid, opt.Bottleneck)
		r.BottleneckAfter = blocks / 2
	}
	return r
}

// Forward applies the network. In gradient-free passes it recycles each
// intermediate as soon as it is consumed (tensor.Done).
func (r *ResNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	h := r.InNorm.Forward(x)
	if r.DoubleAfterNorm {
		h2 := tensor.Scale(h, 2)
		tensor.Done(h)
		h = h2
	}
	var a *tensor.Tensor
	if r.Act == nil {
		a = tensor.CReLU(h) // relu(concat(h, -h)) in one pass
		tensor.Done(h)
	} else {
		neg := tensor.Neg(h)
		cat := tensor.Concat(h, neg)
		tensor.Done(h, neg)
		a = r.Act(cat)
		tensor.Done(cat)
	}
	h = r.InConv.Forward(a)
	tensor.Done(a)
	if r.InSkip == nil {
		return r.forwardPlain(h)
	}
	// In gradient-free passes with running statistics, the skip
	// convolutions' biases are left out of the skip sum and folded into
	// the output batch norm: BN(s + Σb) with running mean μ is BN(s) with
	// running mean μ - Σb. That saves a pass over the sum per bias (the
	// bias rows written ahead of each product).
	fold := !tensor.Recording(x) && !r.OutNorm.Mode.Train
	var shift []float64
	bias := func(c *Conv2D) *tensor.Tensor {
		if !fold || c.B == nil {
			return c.B
		}
		if shift == nil {
			shift = make([]float64, len(c.B.Data))
		}
		for j, v := range c.B.Data {
			shift[j] += float64(v)
		}
		return nil
	}
	k := r.InSkip.Kernel(h)
	skip := tensor.Conv2DBias(h, k, bias(r.InSkip), r.InSkip.Pad)
	r.InSkip.doneKernel(k)
	for i, b := range r.Blocks {
		h2 := b.forward(h, r)
		if h2 != h {
			tensor.Done(h)
		}
		h = h2
		// skip + conv1x1(h), accumulated in place in gradient-free passes.
		k := r.Skips[i].Kernel(h)
		skip = tensor.AddConv2D(skip, h, k, bias(r.Skips[i]), r.Skips[i].Pad)
		r.Skips[i].doneKernel(k)
	}
	tensor.Done(h)
	if shift != nil && testFolded != nil {
		testFolded()
	}
	a = r.normAct(r.OutNorm, skip, shift)
	tensor.Done(skip)
	y := r.OutConv.Forward(a)
	tensor.Done(a)
	return y
}

// forwardPlain is the rest of Forward, from the input convolution's output
// h, for a network without skip connections.
func (r *ResNet) forwardPlain(h *tensor.Tensor) *tensor.Tensor {
	bottle := func(i int) {
		if r.Bottleneck != nil && i == r.BottleneckAfter {
			h2 := r.Bottleneck.Forward(h)
			tensor.Done(h)
			h = h2
		}
	}
	bottle(0)
	for i, b := range r.Blocks {
		h2 := b.forward(h, r)
		if h2 != h {
			tensor.Done(h)
		}
		h = h2
		bottle(i + 1)
	}
	a := r.normAct(r.OutNorm, h, nil)
	tensor.Done(h)
	y := r.OutConv.Forward(a)
	tensor.Done(a)
	return y
}

// testFolded, when set by a test, is called each time Forward folds the
// skip biases into the output batch norm.
var testFolded func()

// normAct applies the batch norm bn and then the activation: as one
// operation for ReLU, otherwise recycling the normalised values in
// gradient-free passes. A non-nil shift is added to x per channel first
// (BatchNorm.forwardShifted: evaluation mode only).
func (r *ResNet) normAct(bn *BatchNorm, x *tensor.Tensor, shift []float64) *tensor.Tensor {
	if shift != nil {
		n := bn.forwardShifted(x, shift, r.Act == nil)
		if r.Act == nil {
			return n
		}
		a := r.Act(n)
		tensor.Done(n)
		return a
	}
	if r.Act == nil {
		return bn.ForwardReLU(x)
	}
	n := bn.Forward(x)
	a := r.Act(n)
	tensor.Done(n)
	return a
}

// forward applies the block with the activation of r.
func (b *ResBlock) forward(x *tensor.Tensor, r *ResNet) *tensor.Tensor {
	a := r.normAct(b.Norm1, x, nil)
	h := b.Conv1.Forward(a)
	tensor.Done(a)
	a = r.normAct(b.Norm2, h, nil)
	tensor.Done(h)
	// x + conv(a): in gradient-free passes the convolution is added
	// straight into x's buffer when x is an intermediate (then y is x).
	k := b.Conv2.Kernel(a)
	y := tensor.AddConv2D(x, a, k, b.Conv2.B, b.Conv2.Pad)
	b.Conv2.doneKernel(k)
	tensor.Done(a)
	return y
}

// Visit implements Module.
func (r *ResNet) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	r.InNorm.Visit(Join(prefix, "in_norm"), fn)
	r.InConv.Visit(Join(prefix, "in_conv"), fn)
	if r.InSkip != nil {
		r.InSkip.Visit(Join(prefix, "in_skip"), fn)
	}
	for i, b := range r.Blocks {
		p := Join(prefix, fmt.Sprintf("blocks.%d", i))
		b.Norm1.Visit(Join(p, "in_norm"), fn)
		b.Conv1.Visit(Join(p, "in_conv"), fn)
		b.Norm2.Visit(Join(p, "out_norm"), fn)
		b.Conv2.Visit(Join(p, "out_conv"), fn)
		if r.Skips != nil {
			r.Skips[i].Visit(Join(prefix, fmt.Sprintf("skips.%d", i)), fn)
		}
	}
	if r.Bottleneck != nil {
		r.Bottleneck.Visit(Join(prefix, "bottleneck"), fn)
	}
	r.OutNorm.Visit(Join(prefix, "out_norm"), fn)
	r.OutConv.Visit(Join(prefix, "out_conv"), fn)
}
