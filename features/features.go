// Package features trains a small convolutional classifier with flowood's
// engine and extracts its penultimate-layer embeddings, for the paper's
// flows on embeddings (App. O, Table 2a). The paper used a 1792-d
// EfficientNet pretrained on ImageNet; no such weights can be fetched
// here, so this is the stand-in, and reports say so.
//
// The network: three stages of two 3x3 convolutions with batch norm and
// ReLU, each stage but the last followed by a squeeze (space to depth,
// the engine's stride-free downsampling), then global average pooling to
// the embedding (Dim values) and a linear layer to the class logits,
// trained by softmax cross-entropy.
package features

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/internal/progress"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// Config sizes the classifier.
type Config struct {
	Height, Width, Channels int
	// Width of the first stage (doubled at each stage); the embedding has
	// 4·Base values.
	Base    int
	Classes int
}

// Net is the classifier.
type Net struct {
	Config Config
	Mode   *nn.Mode
	convs  []*nn.Conv2D
	norms  []*nn.BatchNorm
	head   *nn.Linear
}

// Dim returns the size of the embedding.
func (c Config) Dim() int { return 4 * c.Base }

// New returns a classifier with parameters drawn from rng.
func New(c Config, rng *tensor.RNG) (*Net, error) {
	if c.Height%4 != 0 || c.Width%4 != 0 || c.Base < 1 || c.Classes < 2 || (c.Channels != 1 && c.Channels != 3) {
		return nil, fmt.Errorf("features: config %+v (want sides divisible by 4, 1 or 3 channels, 2+ classes)", c)
	}
	n := &Net{Config: c, Mode: &nn.Mode{}}
	in := c.Channels
	for s := range 3 {
		w := c.Base << s
		if s == 2 {
			w = c.Dim()
		}
		for range 2 {
			n.convs = append(n.convs, nn.NewConv2D(rng, 3, in, w, true, false))
			n.norms = append(n.norms, nn.NewBatchNorm(w, n.Mode))
			in = w
		}
		if s < 2 {
			in *= 4 // squeeze
		}
	}
	n.head = nn.NewLinear(rng, c.Dim(), c.Classes, false)
	return n, nil
}

// Embed returns the embeddings [N, Dim] of images x [N, H, W, C] in [0, 1].
func (n *Net) Embed(x *tensor.Tensor) *tensor.Tensor {
	for i, conv := range n.convs {
		y := conv.Forward(x)
		x = n.norms[i].ForwardReLU(y)
		if i%2 == 1 && i < len(n.convs)-1 {
			x = tensor.Squeeze2x2(x)
		}
	}
	return meanPool(x)
}

// Logits returns the class logits [N, Classes].
func (n *Net) Logits(x *tensor.Tensor) *tensor.Tensor { return n.head.Forward(n.Embed(x)) }

// Visit implements nn.Module.
func (n *Net) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	for i, c := range n.convs {
		c.Visit(nn.Join(prefix, fmt.Sprintf("conv%d", i)), fn)
		n.norms[i].Visit(nn.Join(prefix, fmt.Sprintf("bn%d", i)), fn)
	}
	n.head.Visit(nn.Join(prefix, "head"), fn)
}

// meanPool averages x [N, H, W, C] over H and W, giving [N, C].
func meanPool(x *tensor.Tensor) *tensor.Tensor {
	n, c := x.Shape[0], x.Shape[3]
	hw := x.Shape[1] * x.Shape[2]
	out := make([]float32, n*c)
	for e := range n {
		for p := range hw {
			row := x.Data[(e*hw+p)*c : (e*hw+p+1)*c]
			for k, v := range row {
				out[e*c+k] += v
			}
		}
	}
	for i := range out {
		out[i] /= float32(hw)
	}
	return tensor.Custom([]int{n, c}, out, []*tensor.Tensor{x}, func(gy []float32) {
		gx := make([]float32, len(x.Data))
		for e := range n {
			for p := range hw {
				for k := range c {
					gx[(e*hw+p)*c+k] = gy[e*c+k] / float32(hw)
				}
			}
		}
		tensor.AccumGrad(x, gx)
	})
}

// CrossEntropy returns the mean softmax cross-entropy of logits [N, K]
// against labels, shape [1], and the number of correct argmax
// predictions.
func CrossEntropy(logits *tensor.Tensor, labels []uint8) (*tensor.Tensor, int) {
	n, k := logits.Shape[0], logits.Shape[1]
	prob := make([]float64, n*k)
	var loss float64
	correct := 0
	for e := range n {
		row := logits.Data[e*k : (e+1)*k]
		m, arg := math.Inf(-1), 0
		for j, v := range row {
			if float64(v) > m {
				m, arg = float64(v), j
			}
		}
		if arg == int(labels[e]) {
			correct++
		}
		var s float64
		for j, v := range row {
			prob[e*k+j] = math.Exp(float64(v) - m)
			s += prob[e*k+j]
		}
		for j := range row {
			prob[e*k+j] /= s
		}
		loss -= math.Log(math.Max(prob[e*k+int(labels[e])], 1e-300))
	}
	out := tensor.Custom([]int{1}, []float32{float32(loss / float64(n))}, []*tensor.Tensor{logits}, func(gy []float32) {
		g := make([]float32, n*k)
		for e := range n {
			for j := range k {
				p := prob[e*k+j]
				if j == int(labels[e]) {
					p--
				}
				g[e*k+j] = float32(p/float64(n)) * gy[0]
			}
		}
		tensor.AccumGrad(logits, g)
	})
	return out, correct
}

// TrainOptions configures Train.
type TrainOptions struct {
	Epochs, Batch int
	LR            float64
	Seed          uint64
	Progress      io.Writer
}

// Train fits the classifier to the labelled images by Adam on softmax
// cross-entropy and returns the training accuracy of the last epoch.
func Train(ctx context.Context, n *Net, im *data.Images, opt TrainOptions) (float64, error) {
	if im.Labels == nil {
		return 0, fmt.Errorf("features: %s %s has no labels to train a classifier on", im.Name, im.Split)
	}
	if opt.Batch <= 0 {
		opt.Batch = 64
	}
	if opt.LR <= 0 {
		opt.LR = 1e-3
	}
	adam := train.NewAdam(0)
	params := nn.Params(n)
	rng := rand.New(rand.NewPCG(opt.Seed, 0xfea7))
	d := im.H * im.W * im.C
	x := make([]float32, opt.Batch*d)
	labels := make([]uint8, opt.Batch)
	var acc float64
	n.Mode.Train = true
	defer func() { n.Mode.Train = false }()
	steps := im.N / opt.Batch
	bar := progress.New(opt.Progress, "features", opt.Epochs*steps*opt.Batch, "img")
	for epoch := range opt.Epochs {
		perm := rng.Perm(im.N)
		correct, seen := 0, 0
		var lossSum float64
		for lo := 0; lo+opt.Batch <= len(perm); lo += opt.Batch {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			idx := perm[lo : lo+opt.Batch]
			im.Read(x, idx, rng)
			for j, i := range idx {
				labels[j] = im.Labels[i]
			}
			loss, c := step(n, adam, params, tensor.FromData(x, opt.Batch, im.H, im.W, im.C), labels, opt.LR)
			lossSum += float64(loss)
			correct += c
			seen += opt.Batch
			done := (epoch*steps + lo/opt.Batch + 1) * opt.Batch
			bar.Update(done, done, fmt.Sprintf("epoch %d  accuracy %.3f", epoch+1, float64(correct)/float64(seen)))
		}
		acc = float64(correct) / float64(max(seen, 1))
		if opt.Progress != nil {
			fmt.Fprintf(opt.Progress, "features: epoch %d/%d: loss %.4f, training accuracy %.3f\n", epoch+1, opt.Epochs, lossSum/float64(max(seen/opt.Batch, 1)), acc)
		}
	}
	return acc, nil
}

// step takes one Adam step on the cross-entropy of a batch and returns
// the loss and the number of correct predictions. The gradients are
// those of this batch alone: they are cleared first (without that, every
// step followed the sum of all gradients so far, and on CIFAR-10 the
// training accuracy stayed at 0.2 where the same network in PyTorch
// reached 0.51 in two epochs).
func step(n *Net, adam *train.Adam, params []*tensor.Tensor, x *tensor.Tensor, labels []uint8, lr float64) (float32, int) {
	for _, p := range params {
		clear(p.Grad)
	}
	loss, c := CrossEntropy(n.Logits(x), labels)
	l := loss.Data[0]
	tensor.Backward(loss)
	adam.Step(params, lr)
	return l, c
}

// Extract returns the embeddings of every image of im, [N x Dim] row
// by row, with batch norms in evaluation mode (images at their pixel
// midpoints, (x + 1/2)/256).
func Extract(ctx context.Context, n *Net, im *data.Images) ([]float32, error) {
	n.Mode.Train = false
	d := im.H * im.W * im.C
	dim := n.Config.Dim()
	out := make([]float32, 0, im.N*dim)
	const batch = 64
	x := make([]float32, batch*d)
	for lo := 0; lo < im.N; lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(im.N, lo+batch)
		idx := make([]int, hi-lo)
		for i := range idx {
			idx[i] = lo + i
		}
		im.Read(x, idx, nil)
		p := tensor.GradFree()
		e := n.Embed(p.Input(tensor.FromData(x[:len(idx)*d], len(idx), im.H, im.W, im.C)))
		out = append(out, e.Data...)
		p.Close()
	}
	return out, nil
}
