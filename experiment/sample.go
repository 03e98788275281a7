package experiment

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// sampler is a model that draws samples (flow.Flow.Sample, which the
// registry's flows inherit) and maps data to its latent (Forward, used on
// one example to learn the latent's shape).
type sampler interface {
	Sample(rng *tensor.RNG, n int, latent []int, temperature float64) *tensor.Tensor
	Forward(x *tensor.Tensor) (z, logDet *tensor.Tensor)
}

// Sample draws n samples from the run rc in folder run (checkpoint ck:
// latest or best; empty: best when there is one, else latest) at the
// given temperature, the latent drawn from seed: images as pixel
// intensities x/255 of the quantised pixels (NaN drawn as 0), tables as
// the model gives them, n examples one after the other; nonFinite counts
// the NaN (images) or non-finite (tables) values.
func Sample(rc RunConfig, run, ck string, n int, temperature float64, seed uint64) (x []float32, nonFinite int, err error) {
	m, err := LoadModel(rc, run, ck)
	if err != nil {
		return nil, 0, err
	}
	return sampleModel(m, rc.Data.Shape, n, temperature, seed)
}

// LoadModel builds the model of run rc in folder run and loads its
// checkpoint ck (latest or best; empty: best when there is one, else
// latest), in evaluation mode.
func LoadModel(rc RunConfig, run, ck string) (model.Model, error) {
	if ck == "" {
		ck = "latest"
		if _, err := os.Stat(filepath.Join(run, "checkpoint", "best", checkpoint.ModelFile)); err == nil {
			ck = "best"
		}
	}
	if ck != "latest" && ck != "best" {
		return nil, fmt.Errorf("--checkpoint %q: want latest or best", ck)
	}
	m, err := rc.BuildModel()
	if err != nil {
		return nil, err
	}
	if _, err := checkpoint.Load(filepath.Join(run, "checkpoint", ck), m); err != nil {
		return nil, fmt.Errorf("loading model: %w", err)
	}
	m.SetTraining(false)
	return m, nil
}

// sampleModel draws n samples of data of shape s from m (in evaluation
// mode) with the latent drawn from seed at temperature temp. Images come
// back as pixel intensities x/255 of the quantised pixels x =
// clamp(floor(256 u), 0, 255) of the model's u (NaN counted and drawn as
// 0); tables as the model gives them. nonFinite counts the NaN (images)
// or non-finite (tables) values.
func sampleModel(m model.Model, s datakind.Shape, n int, temp float64, seed uint64) (x []float32, nonFinite int, err error) {
	sm, ok := m.(sampler)
	if !ok {
		return nil, 0, fmt.Errorf("model %T cannot sample", m)
	}
	// the latent's shape: that of one example's Forward
	p := tensor.GradFree()
	probe := p.Input(tensor.New(append([]int{1}, s.Dims()...)...))
	for i := range probe.Data {
		probe.Data[i] = 0.5
	}
	z, _ := sm.Forward(probe)
	latent := append([]int(nil), z.Shape[1:]...)
	p.Close()
	out := sm.Sample(tensor.NewRNG(seed), n, latent, temp)
	if got := tensor.Numel(out.Shape); got != n*s.Dim() {
		return nil, 0, fmt.Errorf("model gave %v samples, want %d of %s", out.Shape, n, s)
	}
	x = out.Data
	for i, v := range x {
		f := float64(v)
		if s.Kind == datakind.Tabular {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				nonFinite++
			}
			continue
		}
		if math.IsNaN(f) {
			nonFinite++
			x[i] = 0
			continue
		}
		x[i] = float32(min(max(math.Floor(256*f), 0), 255) / 255)
	}
	return x, nonFinite, nil
}
