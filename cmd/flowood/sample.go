package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/internal/atomicfile"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
	"github.com/flowood/flowood/viz"
)

var sampleCmd = &command{
	UsageLine: "sample RUN [--n 64] [--temperature 1] [--seed 0] [--checkpoint latest|best] --out samples.png|samples.npy|rows.csv",
	Short: "draw samples from a trained run (evaluation mode, no gradients): a PNG grid of images clipped to the pixel range, " +
		"or the values as .npy (images: pixel/255 in [0, 1], NHWC float32; tables: rows) or .csv (tables)",
	Run: runSample,
}

// sampler is a model that draws samples (flow.Flow.Sample, which the
// registry's flows inherit) and maps data to its latent (Forward, used on
// one example to learn the latent's shape).
type sampler interface {
	Sample(rng *tensor.RNG, n int, latent []int, temperature float64) *tensor.Tensor
	Forward(x *tensor.Tensor) (z, logDet *tensor.Tensor)
}

// maxSamples bounds --n: far above a grid anyone looks at, below what
// exhausts memory in one gradient-free pass.
const maxSamples = 1 << 14

func runSample(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sample", stderr)
	n := fs.Int("n", 64, fmt.Sprintf("number of samples, 1 to %d", maxSamples))
	temp := fs.Float64("temperature", 1, "standard deviation of the latent (1: the model's distribution; below 1 trades diversity for typical samples)")
	seed := fs.Uint64("seed", 0, "random seed of the latent: the same seed gives the same samples")
	ck := fs.String("checkpoint", "", "checkpoint to sample from: latest or best (default: best when the run has one, else latest)")
	out := fs.String("out", "", "output file (required): .png (image grid), .npy or .csv (tables only)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("sample: want exactly one run folder, got %d arguments", len(pos))
	}
	run := pos[0]
	ext := strings.ToLower(filepath.Ext(*out))
	switch {
	case *out == "":
		return fmt.Errorf("sample: --out FILE is required (.png, .npy or .csv)")
	case ext != ".png" && ext != ".npy" && ext != ".csv":
		return fmt.Errorf("sample: --out %s: want a .png, .npy or .csv file", *out)
	case *n < 1 || *n > maxSamples:
		return fmt.Errorf("sample: --n %d must be between 1 and %d", *n, maxSamples)
	case !(*temp >= 0) || math.IsInf(*temp, 0):
		return fmt.Errorf("sample: --temperature %v must be a finite number, at least 0", *temp)
	}
	rc, err := experiment.ReadRunConfig(run)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	shape := rc.Data.Shape
	if shape.Kind == datakind.Image && ext == ".csv" {
		return fmt.Errorf("sample: --out %s: the run's data are %s; write images as .png or .npy", *out, shape)
	}
	if shape.Kind == datakind.Tabular && ext == ".png" {
		return fmt.Errorf("sample: --out %s: the run's data are %s; write rows as .npy or .csv", *out, shape)
	}
	m, err := loadRunModel(rc, run, *ck)
	if err != nil {
		return fmt.Errorf("sample: %w", err)
	}
	x, nonFinite, err := sampleModel(m, shape, *n, *temp, *seed)
	if err != nil {
		return fmt.Errorf("sample: run %s: %w", run, err)
	}
	switch ext {
	case ".png":
		imgs := make([][]float32, *n)
		d := shape.Dim()
		for i := range imgs {
			imgs[i] = x[i*d : (i+1)*d]
		}
		cols := int(math.Ceil(math.Sqrt(float64(*n))))
		err = viz.ImageGrid(*out, imgs, shape.Height, shape.Width, shape.Channels, cols)
	case ".npy":
		err = atomicfile.WriteFile(*out, encodeNPY(x, append([]int{*n}, shape.Dims()...)))
	case ".csv":
		err = atomicfile.WriteFile(*out, encodeCSV(x, *n, shape.Dim()))
	}
	if err != nil {
		return fmt.Errorf("sample: writing %s: %w", *out, err)
	}
	if nonFinite > 0 {
		fmt.Fprintf(stderr, "sample: %d of %d values were not finite (NaN, or infinite in tables); images show NaN as 0\n", nonFinite, len(x))
	}
	fmt.Fprintf(stdout, "wrote %d samples (temperature %g, seed %d) to %s\n", *n, *temp, *seed, *out)
	return nil
}

// loadRunModel builds the model of run rc in folder run and loads its
// checkpoint ck (latest or best; empty: best when there is one, else
// latest), in evaluation mode.
func loadRunModel(rc experiment.RunConfig, run, ck string) (model.Model, error) {
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

// encodeNPY returns x as a .npy file (version 1.0, little-endian float32,
// C order) of the given shape.
func encodeNPY(x []float32, shape []int) []byte {
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// magic (6) + version (2) + length (2) + header + padding + '\n', a
	// multiple of 64
	total := 10 + len(header) + 1
	header += strings.Repeat(" ", (64-total%64)%64) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	binary.Write(&b, binary.LittleEndian, x)
	return b.Bytes()
}

// encodeCSV returns the n rows of d values of x as CSV, without a header.
func encodeCSV(x []float32, n, d int) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		for j := 0; j < d; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatFloat(float64(x[i*d+j]), 'g', -1, 32))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}
