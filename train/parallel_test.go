package train_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// newParallel returns a Parallel over k replicas of m.
func newParallel(t *testing.T, m *realnvp.Model, k int) *train.Parallel {
	t.Helper()
	g := tensor.NewGroup(k)
	reps, err := m.Replicas(g)
	if err != nil {
		t.Fatal(err)
	}
	p, err := train.NewParallel(m, reps, g)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestParallelMatchesSerial checks data-parallel gradients against one
// serial pass over the whole batch: the mean log-likelihood, every
// parameter's gradient and the running statistics after two steps (with
// a gradient-descent step between, which the replicas must see), for
// even and uneven splits. (Not Adam: the biases of convolutions followed
// by batch norm have zero gradient up to rounding, and Adam's
// normalisation turns that rounding into whole steps of either sign.)
func TestParallelMatchesSerial(t *testing.T) {
	cfg := realnvp.Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Recompute: "off"}
	for _, tc := range []struct{ batch, k int }{{8, 2}, {7, 3}} {
		t.Run(fmt.Sprintf("batch%d/replicas%d", tc.batch, tc.k), func(t *testing.T) {
			build := func() *realnvp.Model {
				rng := tensor.NewRNG(7)
				m := realnvp.New(cfg, rng)
				flowtest.Perturb(m, rng, 0.05)
				m.SetTraining(true)
				return m
			}
			ser, par := build(), build()
			p := newParallel(t, par, tc.k)
			rng := tensor.NewRNG(8)
			for step := 0; step < 2; step++ {
				u := tensor.New(tc.batch, 8, 8, 1)
				rng.Uniform(u.Data, 0, 1)
				params := nn.Params(ser)
				for _, q := range params {
					q.ZeroGrad()
				}
				lp := tensor.Mean(ser.LogProb(u))
				want := float64(lp.Data[0])
				tensor.Backward(tensor.Scale(lp, -1))
				got := p.Backward(u, -1)
				if math.Abs(got-want) > 1e-5*math.Abs(want) {
					t.Errorf("step %d: mean log p %v in parallel, %v serial", step, got, want)
				}
				// Parameters that a batch norm follows (convolution
				// biases, weight-norm gains) have gradients that are
				// zero up to rounding of the model's larger ones: the
				// absolute tolerance is relative to the largest gradient.
				pt, st := nn.Tensors(par), nn.Tensors(ser)
				global := 0.0
				for i := range st {
					if st[i].Trainable {
						for _, v := range st[i].T.Grad {
							global = math.Max(global, math.Abs(float64(v)))
						}
					}
				}
				for i := range st {
					var ref, val []float32
					if st[i].Trainable {
						ref, val = st[i].T.Grad, pt[i].T.Grad
					} else {
						ref, val = st[i].T.Data, pt[i].T.Data // running statistics
					}
					scale := 0.0
					for _, v := range ref {
						scale = math.Max(scale, math.Abs(float64(v)))
					}
					for j := range ref {
						if d := math.Abs(float64(val[j] - ref[j])); d > 1e-4*scale+1e-6*math.Max(1, global) {
							t.Errorf("step %d: %s[%d] = %v in parallel, %v serial", step, st[i].Name, j, val[j], ref[j])
							break
						}
					}
				}
				for _, m := range []*realnvp.Model{ser, par} {
					for _, q := range nn.Params(m) {
						for j := range q.Data {
							q.Data[j] -= 1e-2 * q.Grad[j]
						}
					}
				}
			}
		})
	}
}

// TestParallelAfterFailure checks that a step whose replicas fail (images
// of the wrong size) panics on the caller's goroutine and leaves the
// Parallel usable: the next step gives the serial result.
func TestParallelAfterFailure(t *testing.T) {
	cfg := realnvp.Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Recompute: "off"}
	ser := realnvp.New(cfg, tensor.NewRNG(3))
	par := realnvp.New(cfg, tensor.NewRNG(3))
	ser.SetTraining(true)
	p := newParallel(t, par, 2)
	func() {
		defer func() {
			if recover() == nil {
				t.Error("a step on 6x6 images with an 8x8 model did not panic")
			}
		}()
		bad := tensor.New(4, 6, 6, 1)
		p.Backward(bad, -1)
	}()
	u := tensor.New(6, 8, 8, 1)
	tensor.NewRNG(4).Uniform(u.Data, 0, 1)
	lp := tensor.Mean(ser.LogProb(u))
	want := float64(lp.Data[0])
	tensor.Backward(tensor.Scale(lp, -1))
	got := p.Backward(u, -1)
	if math.Abs(got-want) > 1e-5*math.Abs(want) {
		t.Errorf("after a failed step: mean log p %v in parallel, %v serial", got, want)
	}
}
