package features

import (
	"context"
	"math"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/tensor"
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
