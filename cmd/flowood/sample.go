package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/internal/atomicfile"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/viz"
)

var sampleCmd = &command{
	UsageLine: "sample RUN [--n 64] [--temperature 1] [--seed 0] [--checkpoint latest|best] --out samples.png|samples.npy|rows.csv",
	Short: "draw samples from a trained run (evaluation mode, no gradients): a PNG grid of images clipped to the pixel range, " +
		"or the values as .npy (images: pixel/255 in [0, 1], NHWC float32; tables: rows) or .csv (tables)",
	Run: runSample,
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
	x, nonFinite, err := experiment.Sample(rc, run, *ck, *n, *temp, *seed)
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
		err = data.WriteNPYFile(*out, &data.Array{DType: "<f4", Shape: append([]int{*n}, shape.Dims()...), F32: x})
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
