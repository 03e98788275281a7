package ood

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/internal/progress"
	"github.com/flowood/flowood/tensor"
)

// Model is a density model of dequantised images u in [0, 1)^D, shape
// [N, H, W, C]. LogProb returns log p(u) per example in nats.
type Model interface {
	LogProb(u *tensor.Tensor) *tensor.Tensor
	// SetTraining switches batch norms between batch statistics (true)
	// and running statistics (false).
	SetTraining(train bool)
}

// LogLikelihood scores images by the model's log-likelihood: higher means
// more in-distribution.
type LogLikelihood struct {
	Model Model
	// Batch is the evaluation batch size; zero means 256.
	Batch int
	// Seed fixes the dequantisation noise, so scores are reproducible;
	// Midpoint uses ε = 1/2 instead of noise.
	Seed     uint64
	Midpoint bool
	// Progress, when not nil, receives a progress line.
	Progress io.Writer
}

// Name returns "loglik".
func (s *LogLikelihood) Name() string { return "loglik" }

// Score returns log p(u) in nats for the first limit images of im (all of
// them when limit <= 0), where u = (x + ε)/256 is im's dequantised
// pixels: the log-density on [0, 1)^D. The model is put in evaluation
// mode. It returns an error naming the dataset if any score is NaN.
func (s *LogLikelihood) Score(im *data.Images, limit int) ([]float64, error) {
	return s.ScoreContext(context.Background(), im, limit)
}

// ScoreContext is Score that stops between batches once ctx is done,
// returning ctx's error.
func (s *LogLikelihood) ScoreContext(ctx context.Context, im *data.Images, limit int) ([]float64, error) {
	n := im.N
	if limit > 0 && limit < n {
		n = limit
	}
	batch := s.Batch
	if batch <= 0 {
		batch = 256
	}
	var rng *tensor.RNG
	if !s.Midpoint {
		rng = tensor.NewRNG(s.Seed)
	}
	s.Model.SetTraining(false)
	d := im.H * im.W * im.C
	out := make([]float64, 0, n)
	bar := progress.New(s.Progress, "score "+im.Name, n, "img")
	for lo := 0; lo < n; lo += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+batch, n)
		u := tensor.New(hi-lo, im.H, im.W, im.C)
		var r = rng
		if r != nil {
			data.Dequantize(u.Data, im.Pix[lo*d:hi*d], r.Rand)
		} else {
			data.Dequantize(u.Data, im.Pix[lo*d:hi*d], nil)
		}
		var lp *tensor.Tensor
		tensor.NoGrad(func() {
			tensor.Scoped(func() []*tensor.Tensor {
				lp = s.Model.LogProb(u)
				return []*tensor.Tensor{lp}
			})
		})
		for i, v := range lp.Data {
			if math.IsNaN(float64(v)) {
				return nil, fmt.Errorf("scoring %s: example %d has NaN log-likelihood", im.Name, lo+i)
			}
			out = append(out, float64(v))
		}
		bar.Update(hi, hi, "")
	}
	return out, nil
}

// BitsPerDim converts a log-density log p(u) (nats) of dequantised pixels
// u in [0, 1)^D into bits per dimension of the discrete data:
// bpd = -(log p(u) - D ln 256) / (D ln 2). The official RealNVP code
// models (x + ε)/256 too but reports with a 255/256 rescaling that adds
// D ln(255/256) to the log-likelihood; flowood uses the exact 256 scaling.
func BitsPerDim(logProb float64, d int) float64 {
	return -(logProb - float64(d)*math.Log(256)) / (float64(d) * math.Ln2)
}
