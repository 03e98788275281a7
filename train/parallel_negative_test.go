package train_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// TestParallelWeightedMatchesSerial checks Parallel.BackwardWeighted with
// negative training's coefficients against one serial pass over the same
// 2B batch (Negative.Loss and its gradient): log-likelihoods, every
// parameter's gradient and the running statistics, with a threshold that
// puts some OOD examples above it and some below (the coefficients depend
// on the whole batch), for 2 and 3 replicas. Then a step where a replica
// fails leaves it usable.
func TestParallelWeightedMatchesSerial(t *testing.T) {
	cfg := realnvp.Config{Height: 8, Width: 8, Channels: 1, Scales: 2, Blocks: 1, Mid: 4, Recompute: "off"}
	s := datakind.ImageShape(8, 8, 1)
	for _, k := range []int{2, 3} {
		t.Run(fmt.Sprintf("replicas%d", k), func(t *testing.T) {
			build := func() *realnvp.Model {
				rng := tensor.NewRNG(7)
				m := realnvp.New(cfg, rng)
				flowtest.Perturb(m, rng, 0.05)
				m.SetTraining(true)
				return m
			}
			ser, par := build(), build()
			p := newParallel(t, par, k)
			u := tensor.New(12, 8, 8, 1)
			tensor.NewRNG(8).Uniform(u.Data, 0, 1)
			// OOD half: some examples pushed to low likelihood (near 0/1)
			for i := 6 * 64; i < 9*64; i++ {
				u.Data[i] = float32(i%2) * 0.999
			}
			for _, q := range nn.Params(ser) {
				q.ZeroGrad()
			}
			lpSer := ser.LogProb(u)
			// a threshold between the OOD examples' log-likelihoods
			ood := append([]float32(nil), lpSer.Data[6:]...)
			lo, hi := math.Inf(1), math.Inf(-1)
			for _, v := range ood {
				lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
			}
			cu := (lo + hi) / 2
			c := cu - train.NegativeThresholdNats(0, s) // paper-scale c with ThresholdNats(c) = cu
			obj := train.Negative{Threshold: c}
			above := 0
			for _, v := range ood {
				if float64(v) > cu {
					above++
				}
			}
			if above == 0 || above == len(ood) {
				t.Fatalf("threshold %v puts %d of %d OOD examples above", cu, above, len(ood))
			}
			lpRef := append([]float32(nil), lpSer.Data...) // Backward recycles lpSer
			tensor.Backward(obj.Loss(lpSer, s))
			lpPar := p.BackwardWeighted(u, func(lp []float32) []float32 {
				coef, _ := obj.Coefficients(lp, s)
				return coef
			})
			for i := range lpPar {
				if math.Abs(float64(lpPar[i]-lpRef[i])) > 1e-4*math.Abs(float64(lpRef[i]))+1e-3 {
					t.Errorf("log p[%d] %v in parallel, %v serial", i, lpPar[i], lpRef[i])
				}
			}
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
					ref, val = st[i].T.Data, pt[i].T.Data
				}
				scale := 0.0
				for _, v := range ref {
					scale = math.Max(scale, math.Abs(float64(v)))
				}
				for j := range ref {
					if d := math.Abs(float64(val[j] - ref[j])); d > 1e-4*scale+1e-6*math.Max(1, global) {
						t.Errorf("%s[%d] = %v in parallel, %v serial", st[i].Name, j, val[j], ref[j])
						break
					}
				}
			}
			// a failing step (wrong image size) panics and leaves p usable
			func() {
				defer func() {
					if recover() == nil {
						t.Error("a weighted step on 6x6 images with an 8x8 model did not panic")
					}
				}()
				p.BackwardWeighted(tensor.New(6, 6, 6, 1), func(lp []float32) []float32 { return make([]float32, len(lp)) })
			}()
			again := p.BackwardWeighted(u, func(lp []float32) []float32 {
				coef, _ := obj.Coefficients(lp, s)
				return coef
			})
			if len(again) != len(lpPar) {
				t.Errorf("after a failed step: %d log-likelihoods", len(again))
			}
		})
	}
}
