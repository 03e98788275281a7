package nn

import (
	"fmt"
	"math"
	"testing"

	"github.com/flowood/flowood/tensor"
)

// TestResNetFusedReLU checks that the default activation (Act nil: ReLU
// fused with the batch norms before it) computes what Act = tensor.Relu
// computes, as separate operations: outputs, every parameter's gradient
// and the input gradient in training mode, and outputs in evaluation mode
// with gradient recording off.
func TestResNetFusedReLU(t *testing.T) {
	for _, tc := range []struct {
		mid int
		wn  bool
	}{{4, false}, {16, false}, {17, false}, {4, true}, {17, true}} {
		mid := tc.mid
		t.Run(fmt.Sprintf("mid=%d/weightnorm=%v", mid, tc.wn), func(t *testing.T) {
			build := func(fused bool) (*ResNet, *Mode) {
				mode := &Mode{Train: true}
				r := NewResNet(tensor.NewRNG(1), 2, mid, 4, 2, true, mode, ResNetOptions{WeightNorm: tc.wn, OutInit: OutInitZero})
				if r.Act != nil {
					t.Fatalf("NewResNet set Act")
				}
				if !fused {
					r.Act = tensor.Relu
				}
				// Non-zero output layer, so gradients reach every parameter.
				rng := tensor.NewRNG(2)
				rng.Uniform(r.OutConv.W.Data, -0.3, 0.3)
				rng.Uniform(r.OutConv.B.Data, -0.3, 0.3)
				return r, mode
			}
			input := func() *tensor.Tensor {
				x := tensor.New(3, 6, 5, 2)
				tensor.NewRNG(3).Normal(x.Data, 0.2, 1)
				return x.SetRequiresGrad(true)
			}
			r1, m1 := build(true)
			r2, m2 := build(false)
			x1, x2 := input(), input()
			y1, y2 := r1.Forward(x1), r2.Forward(x2)
			same(t, "train output", y1.Data, y2.Data)
			w := tensor.New(y1.Shape...)
			tensor.NewRNG(4).Normal(w.Data, 0, 1)
			tensor.Backward(tensor.Sum(tensor.Mul(y1, w)))
			tensor.Backward(tensor.Sum(tensor.Mul(y2, w)))
			same(t, "input gradient", x1.Grad, x2.Grad)
			p1, p2 := Tensors(r1), Tensors(r2)
			for i := range p1 {
				if p1[i].Trainable {
					same(t, p1[i].Name+" gradient", p1[i].T.Grad, p2[i].T.Grad)
				} else {
					same(t, p1[i].Name, p1[i].T.Data, p2[i].T.Data) // running statistics
				}
			}

			m1.Train, m2.Train = false, false
			var e1, e2 []float32
			p := tensor.GradFree()
			e1 = append([]float32(nil), r1.Forward(p.Input(input())).Data...)
			e2 = append([]float32(nil), r2.Forward(p.Input(input())).Data...)
			p.Close()
			same(t, "eval output", e1, e2)
		})
	}
}

// same fails unless got and want are equal element by element.
func same(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: element %d = %v, unfused %v", what, i, got[i], want[i])
		}
	}
}

// TestResNetEvalFoldsSkipBiases checks the gradient-free evaluation pass,
// which folds the skip convolutions' biases into the output batch norm's
// running mean, against the recorded pass, which adds them, with non-zero
// biases and running statistics everywhere: equal up to float32 rounding.
func TestResNetEvalFoldsSkipBiases(t *testing.T) {
	for i, act := range []func(*tensor.Tensor) *tensor.Tensor{nil, tensor.Softplus, nil} {
		mode := &Mode{}
		r := NewResNet(tensor.NewRNG(1), 2, 16, 4, 2, false, mode, ResNetOptions{WeightNorm: i == 2})
		r.Act = act
		rng := tensor.NewRNG(2)
		for _, p := range Tensors(r) {
			switch {
			case p.Trainable:
				rng.Uniform(p.T.Data, -0.5, 0.5)
			default: // running mean and variance
				rng.Uniform(p.T.Data, 0.5, 1.5)
			}
		}
		x := tensor.New(3, 6, 5, 2)
		tensor.NewRNG(3).Normal(x.Data, 0.2, 1)
		folded := 0
		testFolded = func() { folded++ }
		want := r.Forward(x) // gradients enabled: biases added
		if folded != 0 {
			t.Fatalf("the recorded pass folded the skip biases")
		}
		var got []float32
		p := tensor.GradFree()
		got = append([]float32(nil), r.Forward(p.Input(x)).Data...)
		p.Close()
		testFolded = nil
		if folded != 1 {
			t.Fatalf("the gradient-free pass folded the skip biases %d times, want 1", folded)
		}
		var worst float64
		for i, w := range want.Data {
			d := math.Abs(float64(got[i]-w)) / (1 + math.Abs(float64(w)))
			worst = max(worst, d)
		}
		if worst > 1e-5 || len(got) != len(want.Data) {
			t.Errorf("act %v: folded biases differ from added ones by %.3g (relative)", act != nil, worst)
		}
		t.Logf("act %v: largest relative difference %.3g", act != nil, worst)
	}
}
