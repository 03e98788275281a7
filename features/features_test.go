package features

import (
	"context"
	"math"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// TestGradients checks meanPool and CrossEntropy's hand-written backward
// passes against central finite differences in float64 arithmetic of
// the same loss.
func TestGradients(t *testing.T) {
	rng := tensor.NewRNG(1)
	x := tensor.Randn(rng, 2, 2, 3, 4) // N, H, W, C
	x.SetRequiresGrad(true)
	labels := []uint8{1, 3}
	lossOf := func(xs []float32) float64 {
		p := tensor.GradFree()
		defer p.Close()
		l, _ := CrossEntropy(meanPool(p.Input(tensor.FromData(xs, 2, 2, 3, 4))), labels)
		return float64(l.Data[0])
	}
	l, _ := CrossEntropy(meanPool(x), labels)
	tensor.Backward(l)
	for i := range x.Data {
		a := append([]float32(nil), x.Data...)
		b := append([]float32(nil), x.Data...)
		const h = 1e-2
		a[i] += h
		b[i] -= h
		fd := (lossOf(a) - lossOf(b)) / (2 * h)
		if math.Abs(fd-float64(x.Grad[i])) > 2e-3 {
			t.Errorf("d loss / d x[%d]: backward %v, finite differences %v", i, x.Grad[i], fd)
		}
	}
}

// TestTrainEmbed trains a small classifier for two epochs on the embedded
// FashionMNIST (real labels): its training accuracy is far above the
// 10% of chance, and the embeddings have the network's size and are
// finite.
func TestTrainEmbed(t *testing.T) {
	im, err := data.Load("fashionmnist", "train", data.Options{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	im = im.Subset(data.SampleIndices(im.N, 2000, 1))
	n, err := New(Config{Height: 28, Width: 28, Channels: 1, Base: 8, Classes: 10}, tensor.NewRNG(2))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := Train(context.Background(), n, im, TrainOptions{Epochs: 2, Batch: 50, LR: 3e-3})
	if err != nil {
		t.Fatal(err)
	}
	if acc < 0.4 {
		t.Errorf("training accuracy %v after two epochs, want well above chance (0.1)", acc)
	}
	e, err := Extract(context.Background(), n, im.Subset([]int{0, 1, 2}))
	if err != nil {
		t.Fatal(err)
	}
	if len(e) != 3*32 {
		t.Fatalf("%d embedding values, want 3 x 32", len(e))
	}
	for _, v := range e {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			t.Fatal("non-finite embedding")
		}
	}
}

// TestParamGradients checks the gradient of the whole classifier's loss,
// in training mode (batch norms on batch statistics), with respect to
// parameters of every layer against central finite differences, on
// colour 4x4 images (3 channels: an odd channel count at the first
// convolution). The network is small and h is 1e-4 so that a step of h
// crosses no ReLU's kink, where finite differences would be wrong (at
// h = 1e-2 and 1e-3 some did; at 1e-4 and 3e-5 they agree).
func TestParamGradients(t *testing.T) {
	rng := tensor.NewRNG(3)
	n, err := New(Config{Height: 4, Width: 4, Channels: 3, Base: 1, Classes: 5}, rng)
	if err != nil {
		t.Fatal(err)
	}
	n.Mode.Train = true
	const batch = 6
	x := tensor.Randn(rng, batch, 4, 4, 3)
	labels := []uint8{0, 1, 2, 3, 4, 1}
	loss := func() float64 {
		p := tensor.GradFree()
		defer p.Close()
		l, _ := CrossEntropy(n.Logits(p.Input(x)), labels)
		return float64(l.Data[0])
	}
	params := nn.Params(n)
	for _, p := range params {
		clear(p.Grad)
	}
	l, _ := CrossEntropy(n.Logits(x), labels)
	tensor.Backward(l)
	checked := 0
	n.Visit("", func(name string, p *tensor.Tensor, trainable bool) {
		if !trainable {
			return
		}
		for _, i := range []int{0, len(p.Data) / 2, len(p.Data) - 1} {
			old := p.Data[i]
			const h = 1e-4
			p.Data[i] = old + h
			up := loss()
			p.Data[i] = old - h
			down := loss()
			p.Data[i] = old
			fd := (up - down) / (2 * h)
			if d := math.Abs(fd - float64(p.Grad[i])); d > 1e-3+0.05*math.Abs(fd) {
				t.Errorf("d loss / d %s[%d]: backward %.6f, finite differences %.6f", name, i, p.Grad[i], fd)
			}
			checked++
		}
	})
	if checked < 3*len(params) {
		t.Fatalf("checked %d values of %d parameters", checked, len(params))
	}
}

// TestStepGradients checks that each training step follows the gradient
// of its own batch: two steps on one batch at a negligible learning rate
// leave the gradient of one batch, not the sum of two (the bug this
// caught made the CIFAR-10 training accuracy stall at 0.2).
func TestStepGradients(t *testing.T) {
	rng := tensor.NewRNG(4)
	n, err := New(Config{Height: 8, Width: 8, Channels: 3, Base: 2, Classes: 4}, rng)
	if err != nil {
		t.Fatal(err)
	}
	n.Mode.Train = true
	x := tensor.Randn(rng, 4, 8, 8, 3)
	labels := []uint8{0, 1, 2, 3}
	adam := train.NewAdam(0)
	params := nn.Params(n)
	step(n, adam, params, x, labels, 1e-12)
	first := make([][]float32, len(params))
	for i, p := range params {
		first[i] = append([]float32(nil), p.Grad...)
	}
	step(n, adam, params, x, labels, 1e-12)
	for i, p := range params {
		for j, g := range p.Grad {
			if d := math.Abs(float64(g - first[i][j])); d > 1e-5+1e-3*math.Abs(float64(first[i][j])) {
				t.Fatalf("parameter %d value %d: gradient %v after the second step, %v after the first", i, j, g, first[i][j])
			}
		}
	}
}
