package experiment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/viz"
)

// latentModel is a flow whose latent can be shown in the input's layout
// (flow.Flow's Forward and Unarrange, promoted to the models that embed
// it).
type latentModel interface {
	Forward(x *tensor.Tensor) (z, logDet *tensor.Tensor)
	Unarrange(z *tensor.Tensor) *tensor.Tensor
	SetTraining(train bool)
}

// LatentVariants are the columns of the latents view, in order.
var LatentVariants = []string{"x", "z", "z averaged over K dequantisations", "z with batch norm in train mode"}

// LatentsView writes the paper's latent views (Fig. 2, 8; App. G) of a
// few examples of the in-distribution test set and each OOD set: per
// example the image x, unsqueeze(z) (flow.Unarrange of the latent of one
// dequantisation), unsqueeze(z) averaged over k dequantisations, and
// unsqueeze(z) with the batch norms using the batch's statistics. Files
// in opt.Out, per set: latents-SET.png (a row per example, the four
// columns; latents drawn as (z + 3)/6, so the standard normal's range
// fills the grey scale) and latents-SET.npy (float32, examples x 4 x H x
// W x C, the latents unscaled). It returns the arrays by set.
func LatentsView(ctx context.Context, run string, opt ViewOptions, k int) (map[string][]float32, error) {
	rc, mm, sets, err := imageView(run, &opt, 8, "latents")
	if err != nil {
		return nil, err
	}
	m, ok := mm.(latentModel)
	if !ok {
		return nil, fmt.Errorf("latents view: the model (%T) cannot show its latent in the image's layout", mm)
	}
	if k < 1 {
		k = 40
	}
	h, w, c := rc.Data.Height, rc.Data.Width, rc.Data.Channels
	d := h * w * c
	out := map[string][]float32{}
	for _, s := range sets {
		x, idx, err := viewExamples(ctx, rc, s, opt)
		if err != nil {
			return nil, err
		}
		n := len(idx)
		rng := rand.New(rand.NewPCG(opt.Seed, 0x1a7e))
		pix := make([]float32, n*d)
		x.Read(pix, idx, nil) // midpoints: the image itself
		latent := func(train bool, draws int) []float32 {
			m.SetTraining(train)
			defer m.SetTraining(false)
			sum := make([]float32, n*d)
			u := make([]float32, n*d)
			for range draws {
				x.Read(u, idx, rng)
				p := tensor.GradFree()
				z, _ := m.Forward(p.Input(tensor.FromData(u, n, h, w, c)))
				img := m.Unarrange(z)
				for j, v := range img.Data {
					sum[j] += v / float32(draws)
				}
				p.Close()
			}
			return sum
		}
		cols := [][]float32{pix, latent(false, 1), latent(false, k), latent(true, 1)}
		arr := make([]float32, 0, n*4*d)
		var tiles [][]float32
		for e := range n {
			for v, col := range cols {
				tile := col[e*d : (e+1)*d]
				arr = append(arr, tile...)
				shown := make([]float32, d)
				for j, z := range tile {
					if v == 0 {
						shown[j] = z
					} else {
						shown[j] = (z + 3) / 6
					}
				}
				tiles = append(tiles, shown)
			}
		}
		label := s[0] + "-" + s[1]
		name := strings.ReplaceAll(label, "/", "_")
		if err := viz.ImageGrid(filepath.Join(opt.Out, "latents-"+name+".png"), tiles, h, w, c, 4); err != nil {
			return nil, err
		}
		if err := data.WriteNPYFile(filepath.Join(opt.Out, "latents-"+name+".npy"),
			&data.Array{DType: "<f4", Shape: []int{n, 4, h, w, c}, F32: arr}); err != nil {
			return nil, err
		}
		out[s[0]+" "+s[1]] = arr
	}
	return out, nil
}

// imageView prepares a view of single images of a run of image data: the
// run's configuration, its model (best checkpoint, evaluation mode), the
// sets to show (the in-distribution held-out split and each OOD set's)
// and opt with its defaults (n examples, the run's dataset) and its
// folder made.
func imageView(run string, opt *ViewOptions, n int, view string) (RunConfig, model.Model, [][2]string, error) {
	rc, err := ReadRunConfig(run)
	if err != nil {
		return RunConfig{}, nil, nil, err
	}
	if rc.Data.Kind != datakind.Image {
		return RunConfig{}, nil, nil, fmt.Errorf("%s view: the run models %s data, not images", view, rc.Data.Kind)
	}
	m, err := loadReference(run, rc, "run")
	if err != nil {
		return RunConfig{}, nil, nil, err
	}
	m.SetTraining(false)
	if opt.N <= 0 {
		opt.N = n
	}
	if opt.Data == "" {
		opt.Data = rc.Data.Name
	}
	split, err := heldOutSplit(opt.Data)
	if err != nil {
		return RunConfig{}, nil, nil, err
	}
	sets := [][2]string{{opt.Data, split}}
	for _, o := range opt.OOD {
		sets = append(sets, [2]string{o, oodSplit(o, rc.Data.Embedded)})
	}
	if err := os.MkdirAll(opt.Out, 0o755); err != nil {
		return RunConfig{}, nil, nil, err
	}
	return rc, m, sets, nil
}

// viewExamples loads set s ([dataset, split]) as the run's model sees it
// and the indices of the examples a view shows: opt.Index (each checked
// against the split's size) or a random opt.N drawn with opt.Seed.
func viewExamples(ctx context.Context, rc RunConfig, s [2]string, opt ViewOptions) (datakind.Examples, []int, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	x, err := LoadExamples(rc.Data, s[0], s[1])
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s %s: %w", s[0], s[1], err)
	}
	idx := opt.Index
	if len(idx) == 0 {
		idx = data.SampleIndices(x.Len(), min(opt.N, x.Len()), opt.Seed)
	}
	for _, i := range idx {
		if i < 0 || i >= x.Len() {
			return nil, nil, fmt.Errorf("--index %d: %s %s has %d examples", i, s[0], s[1], x.Len())
		}
	}
	return x, idx, nil
}
