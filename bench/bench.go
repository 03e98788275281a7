// Package bench is the fixed benchmark set behind `flowood bench`: the
// conv-shaped GEMM, the 4-coupling network, and RealNVP training and
// evaluation steps. The networks are the same as bench/pytorch/bench.py's,
// so results compare side by side. Each result is a Result line of JSON.
package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"syscall"
	"time"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/flow/mask"
	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/model/glow"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/model/tabular"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// Result is one measurement: {"name":..., "unit":..., "value":...} plus
// optional details for humans.
type Result struct {
	Name  string         `json:"name"`
	Unit  string         `json:"unit"`
	Value float64        `json:"value"`
	Extra map[string]any `json:"-"`
}

// MarshalJSON flattens Extra into the object.
func (r Result) MarshalJSON() ([]byte, error) {
	m := map[string]any{"name": r.Name, "unit": r.Unit, "value": r.Value}
	for k, v := range r.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// Bench is one named benchmark.
type Bench struct {
	Name string
	Run  func(quick bool, emit func(Result)) error
}

// All lists the benchmarks in the order `flowood bench` runs them.
var All = []Bench{
	{"sgemm", benchSgemm},
	{"realnvp_train", func(q bool, e func(Result)) error { return benchRealNVPTrain(q, e, "cpu", "", 64, 3, 20, "realnvp") }},
	{"realnvp_eval", benchRealNVPEval},
	{"coupling4_train", benchCoupling4},
	{"realnvp_paper_train", func(q bool, e func(Result)) error {
		return benchRealNVPTrain(q, e, "paper", "off", 32, 1, 5, "realnvp_paper")
	}},
	{"realnvp_paper_recompute_train", func(q bool, e func(Result)) error {
		return benchRealNVPTrain(q, e, "paper", "on", 32, 1, 5, "realnvp_paper_recompute")
	}},
	{"tabular_train", benchTabularTrain},
	{"glow_train", benchGlowTrain},
}

// Find returns the named benchmark.
func Find(name string) (Bench, error) {
	for _, b := range All {
		if b.Name == name {
			return b, nil
		}
	}
	var names []string
	for _, b := range All {
		names = append(names, b.Name)
	}
	return Bench{}, fmt.Errorf("unknown benchmark %q (known: %v)", name, names)
}

// PeakRSSMiB returns the process's peak resident set size in MiB.
func PeakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}

// Write prints r as one JSON line.
func Write(w io.Writer, r Result) {
	b, _ := json.Marshal(r)
	fmt.Fprintf(w, "%s\n", b)
}

// timeSteps runs fn warmup+steps times and returns the median wall time of
// the timed runs.
func timeSteps(warmup, steps int, fn func()) (median time.Duration, all []time.Duration) {
	for i := 0; i < warmup; i++ {
		fn()
	}
	for i := 0; i < steps; i++ {
		t0 := time.Now()
		fn()
		all = append(all, time.Since(t0))
	}
	s := append([]time.Duration(nil), all...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], all
}

func counts(quick bool, warmup, steps int) (int, int) {
	if quick {
		return 1, 2
	}
	return warmup, steps
}

func benchSgemm(quick bool, emit func(Result)) error {
	const m, n, k = 50176, 64, 576
	rng := tensor.NewRNG(1)
	a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
	rng.Normal(a, 0, 1)
	rng.Normal(b, 0, 1)
	w, s := counts(quick, 2, 10)
	med, _ := timeSteps(w, s, func() { kernels.Sgemm(false, false, m, n, k, 1, a, k, b, n, 0, c, n) })
	emit(Result{"gemm_conv_gflops", "GFLOP/s", kernels.SgemmFLOPs(m, n, k) / med.Seconds() / 1e9,
		map[string]any{"shape": "50176x576x64", "kernel": kernels.MicroKernel(), "threads": kernels.Workers()}})
	return nil
}

// fashionBatches returns nb dequantised batches of real FashionMNIST
// images (the embedded subset).
func fashionBatches(nb, batch int) ([]*tensor.Tensor, error) {
	im, err := data.LoadEmbedded("fashionmnist", "train")
	if err != nil {
		return nil, err
	}
	rng := tensor.NewRNG(2)
	d := im.Dim()
	var out []*tensor.Tensor
	for i := 0; i < nb; i++ {
		u := tensor.New(batch, im.H, im.W, im.C)
		data.Dequantize(u.Data, im.Pix[i*batch*d:(i+1)*batch*d], rng.Rand)
		out = append(out, u)
	}
	return out, nil
}

type densityModel interface {
	LogProb(*tensor.Tensor) *tensor.Tensor
	nn.Module
}

// trainStep is one full step: zero gradients, forward, loss (mean negative
// log-likelihood in nats), backward, Adam update. With par the gradients
// are computed data-parallel, as flowood train does.
func trainStep(m densityModel, par *train.Parallel, params []*tensor.Tensor, opt train.Optimizer, u *tensor.Tensor) float64 {
	var v float64
	if par != nil {
		v = -par.Backward(u, -1)
	} else {
		for _, p := range params {
			p.ZeroGrad()
		}
		loss := tensor.Scale(tensor.Mean(m.LogProb(u)), -1)
		v = float64(loss.Data[0])
		tensor.Backward(loss)
	}
	opt.Step(params, 1e-3)
	return v
}

// pytorchPreset returns the named preset as bench/pytorch/bench.py builds
// it: plain convolutions (no weight norm) with zero output convolutions,
// so that both sides time the same network.
func pytorchPreset(name string) (realnvp.Config, error) {
	cfg, err := realnvp.Preset(name)
	cfg.WeightNorm, cfg.OutInit = "off", "zero"
	return cfg, err
}

func benchRealNVPTrain(quick bool, emit func(Result), preset, recompute string, batch, warmup, steps int, prefix string) error {
	cfg, err := pytorchPreset(preset)
	if err != nil {
		return err
	}
	if recompute != "" {
		cfg.Recompute = recompute
	}
	m := realnvp.New(cfg, tensor.NewRNG(1))
	m.SetTraining(true)
	params := nn.Params(m)
	opt := train.NewAdam(0)
	par, err := experiment.DataParallel("realnvp", m)
	if err != nil {
		return err
	}
	batches, err := fashionBatches(4, batch)
	if err != nil {
		return err
	}
	i, loss := 0, 0.0
	w, s := counts(quick, warmup, steps)
	med, _ := timeSteps(w, s, func() {
		loss = trainStep(m, par, params, opt, batches[i%len(batches)])
		i++
	})
	extra := map[string]any{"preset": preset, "recompute": cfg.Recompute, "data_parallel": par != nil, "batch": batch, "steps": s,
		"median_ms": float64(med.Microseconds()) / 1e3, "loss_nats": loss, "threads": kernels.Workers()}
	emit(Result{prefix + "_train_img_per_s", "img/s", float64(batch) / med.Seconds(), extra})
	emit(Result{prefix + "_params", "count", float64(countParams(params)), nil})
	return nil
}

func countParams(ps []*tensor.Tensor) int {
	n := 0
	for _, p := range ps {
		n += len(p.Data)
	}
	return n
}

func benchRealNVPEval(quick bool, emit func(Result)) error {
	cfg, _ := pytorchPreset("cpu")
	m := realnvp.New(cfg, tensor.NewRNG(1))
	params := nn.Params(m)
	opt := train.NewAdam(0)
	tb, err := fashionBatches(2, 64)
	if err != nil {
		return err
	}
	m.SetTraining(true)
	for i := 0; i < 3; i++ { // running statistics away from their defaults
		trainStep(m, nil, params, opt, tb[i%2])
	}
	// As flowood train does between training and evaluation: drop the
	// training steps' recycled buffers.
	tensor.ReleaseBuffers()
	m.SetTraining(false)
	const batch = 256
	batches, err := fashionBatches(2, batch)
	if err != nil {
		return err
	}
	i := 0
	w, s := counts(quick, 2, 10)
	med, _ := timeSteps(w, s, func() {
		p := tensor.GradFree()
		m.LogProb(p.Input(batches[i%len(batches)]))
		p.Close()
		i++
	})
	emit(Result{"realnvp_eval_img_per_s", "img/s", batch / med.Seconds(), map[string]any{"preset": "cpu",
		"batch": batch, "steps": s, "median_ms": float64(med.Microseconds()) / 1e3, "threads": kernels.Workers()}})
	return nil
}

func benchCoupling4(quick bool, emit func(Result)) error {
	rng := tensor.NewRNG(1)
	mode := &nn.Mode{Train: true}
	var steps flow.Chain
	for i := 0; i < 4; i++ {
		net := nn.NewResNet(rng, 1, 64, 2, 2, true, mode)
		steps = append(steps, bijector.NewAffineCoupling(mask.Checkerboard(28, 28, 1, i%2 == 1), net))
	}
	m := flow.Flow{Bijector: steps}
	params := nn.Params(m)
	opt := train.NewAdam(0)
	const batch = 64
	batches, err := fashionBatches(4, batch)
	if err != nil {
		return err
	}
	i, loss := 0, 0.0
	w, s := counts(quick, 3, 20)
	med, _ := timeSteps(w, s, func() {
		loss = trainStep(m, nil, params, opt, batches[i%len(batches)])
		i++
	})
	extra := map[string]any{"batch": batch, "mid": 64, "blocks": 2, "steps": s, "loss_nats": loss, "threads": kernels.Workers()}
	emit(Result{"coupling4_train_ms_per_step", "ms", float64(med.Microseconds()) / 1e3, extra})
	emit(Result{"coupling4_train_img_per_s", "img/s", batch / med.Seconds(), extra})
	emit(Result{"coupling4_params", "count", float64(countParams(params)), nil})
	return nil
}

// benchTabularTrain times training steps of the tabular model at App. O's
// UCI size (8 couplings, st-networks of 1 x 256 hidden units) on 43
// features (MINIBOONE's), batch 32, with AdamW (weight decay 1e-3), as
// flowood train --model tabular --preset paper does. The features are
// standard normal draws: the step's time does not depend on the values.
func benchTabularTrain(quick bool, emit func(Result)) error {
	const batch, features = 32, 43
	cfg, err := tabular.Preset("paper", features)
	if err != nil {
		return err
	}
	m := tabular.New(cfg, tensor.NewRNG(1))
	params := nn.Params(m)
	opt := train.NewAdamW(1e-3)
	rng := tensor.NewRNG(2)
	var batches []*tensor.Tensor
	for i := 0; i < 8; i++ {
		batches = append(batches, tensor.Randn(rng, batch, features))
	}
	i, loss := 0, 0.0
	w, s := counts(quick, 50, 300)
	med, _ := timeSteps(w, s, func() {
		loss = trainStep(m, nil, params, opt, batches[i%len(batches)])
		i++
	})
	extra := map[string]any{"preset": "paper", "couplings": cfg.Couplings, "hidden": cfg.Hidden, "layers": cfg.Layers,
		"features": features, "batch": batch, "steps": s, "median_ms": float64(med.Microseconds()) / 1e3,
		"loss_nats": loss, "threads": kernels.Workers()}
	emit(Result{"tabular_train_img_per_s", "img/s", batch / med.Seconds(), extra})
	emit(Result{"tabular_params", "count", float64(countParams(params)), nil})
	return nil
}

// benchGlowTrain times training steps of Glow's cpu preset (batch 64, as
// the preset trains; data-parallel on several cores, as flowood train
// does), the network of bench/pytorch/bench.py's glow_train. The first
// warm-up step initialises the actnorms.
func benchGlowTrain(quick bool, emit func(Result)) error {
	cfg, err := glow.Preset("cpu")
	if err != nil {
		return err
	}
	m := glow.New(cfg, tensor.NewRNG(1))
	m.SetTraining(true)
	params := nn.Params(m)
	opt := train.NewAdam(0)
	par, err := experiment.DataParallel("glow", m)
	if err != nil {
		return err
	}
	const batch = 64
	batches, err := fashionBatches(4, batch)
	if err != nil {
		return err
	}
	i, loss := 0, 0.0
	w, s := counts(quick, 3, 20)
	med, _ := timeSteps(w, s, func() {
		loss = trainStep(m, par, params, opt, batches[i%len(batches)])
		i++
	})
	extra := map[string]any{"preset": "cpu", "scales": cfg.Scales, "steps_per_scale": cfg.Steps, "hidden": cfg.Hidden,
		"layers": cfg.Layers, "data_parallel": par != nil, "batch": batch, "steps": s,
		"median_ms": float64(med.Microseconds()) / 1e3, "loss_nats": loss, "threads": kernels.Workers()}
	emit(Result{"glow_train_img_per_s", "img/s", float64(batch) / med.Seconds(), extra})
	emit(Result{"glow_params", "count", float64(countParams(params)), nil})
	return nil
}
