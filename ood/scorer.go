package ood

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/flowood/flowood/data/pixels"
	"github.com/flowood/flowood/flow"
	"github.com/flowood/flowood/internal/progress"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
)

// Model is a density model: of dequantised images u in [0, 1)^D, shape
// [N, H, W, C], or of table rows, shape [N, D] (model.Model is one).
// LogProb returns log p per example in nats.
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
	// ImageNoise, for images, draws each image's noise from its own
	// pixels (pixels.ImageNoise) instead of from Seed, so that its score
	// is a function of the image alone, as package detector computes it,
	// whatever set, batch or position the image comes in. Midpoint
	// overrides it; tables are never dequantised.
	ImageNoise bool
	// Progress, when not nil, receives a progress line.
	Progress io.Writer
}

// Name returns "loglik".
func (s *LogLikelihood) Name() string { return "loglik" }

// Score returns log p(x) in nats for the first limit examples of x (all
// of them when limit <= 0): for images the log-density on [0, 1)^D of
// their dequantised pixels u = (x + ε)/256, for tables of the rows as
// they are (datakind.Examples.Read). The model is put in evaluation mode.
// Score checks ctx between batches and returns ctx's error when it is
// done. It returns an error naming the set if any score is NaN. When
// Batch is over flow.EvalChunk, a last batch of at most flow.EvalChunk
// examples is scored with the one before.
func (s *LogLikelihood) Score(ctx context.Context, x datakind.Examples, limit int) ([]float64, error) {
	n := x.Len()
	if limit > 0 && limit < n {
		n = limit
	}
	batch := s.Batch
	if batch <= 0 {
		batch = 256
	}
	read := s.Inputs(x)
	s.Model.SetTraining(false)
	shape := x.Shape()
	out := make([]float64, 0, n)
	bar := progress.New(s.Progress, "score "+x.Label(), n, "img")
	idx := make([]int, 0, batch)
	for lo, hi := 0, 0; lo < n; lo = hi {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("scoring %s: %w", x.Label(), err)
		}
		hi = min(lo+batch, n)
		if batch > flow.EvalChunk && n-hi <= flow.EvalChunk {
			// A short tail joins this batch: the flows evaluate a batch
			// of more than EvalChunk examples in padded chunks of
			// EvalChunk (flow.LogProbChunks), as package detector does,
			// so that an example's score has the detector's bits
			// whatever the kernels do with smaller batches.
			hi = n
		}
		idx = idx[:0]
		for i := lo; i < hi; i++ {
			idx = append(idx, i)
		}
		u := tensor.New(append([]int{hi - lo}, shape...)...)
		read(u.Data, idx)
		p := tensor.GradFree()
		lp := s.Model.LogProb(p.Input(u))
		for i, v := range lp.Data {
			if math.IsNaN(float64(v)) {
				p.Close()
				return nil, fmt.Errorf("scoring %s: example %d has NaN log-likelihood", x.Label(), lo+i)
			}
			out = append(out, float64(v))
		}
		p.Close()
		bar.Update(hi, hi, "")
	}
	return out, nil
}

// Inputs returns the function that writes the model's inputs for the
// examples idx of x into dst, as Score reads them: Score's batches read
// in turn give Score's inputs (the noise drawn from Seed continues from
// one call to the next; with ImageNoise each image's own).
func (s *LogLikelihood) Inputs(x datakind.Examples) func(dst []float32, idx []int) {
	shape := x.Shape()
	switch {
	case s.Midpoint:
		return func(dst []float32, idx []int) { x.Read(dst, idx, nil) }
	case s.ImageNoise && len(shape) == 3:
		d := shape[0] * shape[1] * shape[2]
		px := make([]uint8, d)
		return func(dst []float32, idx []int) {
			x.Read(dst, idx, nil) // the midpoints (x + 1/2)/256, exact in float32
			for i := range idx {
				u := dst[i*d : (i+1)*d]
				for j, v := range u {
					px[j] = uint8(math.Round(float64(v)*256 - 0.5))
				}
				pixels.Dequantize(u, px, pixels.ImageNoise(px))
			}
		}
	}
	noise := tensor.NewRNG(s.Seed).Rand
	return func(dst []float32, idx []int) { x.Read(dst, idx, noise) }
}

// BitsPerDim converts a log-density log p(u) (nats) of dequantised pixels
// u in [0, 1)^D into bits per dimension of the discrete data; it is
// datakind.BitsPerDim, where the formula and its constant are documented.
func BitsPerDim(logProb float64, d int) float64 { return datakind.BitsPerDim(logProb, d) }
