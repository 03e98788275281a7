package experiment

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/viz"
)

// invertibleModel is a latentModel that can also go back from a latent.
type invertibleModel interface {
	latentModel
	Inverse(z *tensor.Tensor) (x, logDet *tensor.Tensor)
	Arrange(x *tensor.Tensor) *tensor.Tensor
}

// ResampleView writes the paper's latent resampling (Fig. 16): for a few
// examples of the in-distribution test set and each OOD set, the latent
// z (in the image's layout, flow.Unarrange) has the values of its
// side x side centre square, in every channel, replaced by fresh draws
// from the standard normal, and is inverted back to an image; draws
// resamplings per example. Files in opt.Out, per set: resample-SET.png (a
// row per example: the input, its reconstruction from the unchanged
// latent, then the resamplings; clipped to [0, 1]) and resample-SET.npy
// (float32, examples x (2 + draws) x H x W x C, unclipped). It returns
// the latents before and after resampling, by set, for tests.
func ResampleView(ctx context.Context, run string, opt ViewOptions, side, draws int) (before, after map[string][]float32, err error) {
	rc, mm, sets, err := imageView(run, &opt, 6, "resample")
	if err != nil {
		return nil, nil, err
	}
	m, ok := mm.(invertibleModel)
	if !ok {
		return nil, nil, fmt.Errorf("resample view: the model (%T) cannot rearrange and invert its latent", mm)
	}
	h, w, c := rc.Data.Height, rc.Data.Width, rc.Data.Channels
	if side < 1 || side > h || side > w {
		return nil, nil, fmt.Errorf("resample view: a %dx%d square in %dx%d images", side, side, h, w)
	}
	if draws < 1 {
		draws = 4
	}
	d := h * w * c
	i0, j0 := (h-side)/2, (w-side)/2
	m.SetTraining(false)
	before, after = map[string][]float32{}, map[string][]float32{}
	for _, s := range sets {
		x, idx, err := viewExamples(ctx, rc, s, opt)
		if err != nil {
			return nil, nil, err
		}
		n := len(idx)
		rng := rand.New(rand.NewPCG(opt.Seed, 0x5e5a))
		u := make([]float32, n*d)
		x.Read(u, idx, rng)
		p := tensor.GradFree()
		z, _ := m.Forward(p.Input(tensor.FromData(u, n, h, w, c)))
		zimg := append([]float32(nil), m.Unarrange(z).Data...)
		rec, _ := m.Inverse(z)
		cols := [][]float32{u, append([]float32(nil), rec.Data...)}
		var lastZ []float32
		for range draws {
			zr := append([]float32(nil), zimg...)
			for e := range n {
				for i := i0; i < i0+side; i++ {
					for j := j0; j < j0+side; j++ {
						for k := range c {
							zr[e*d+(i*w+j)*c+k] = float32(rng.NormFloat64())
						}
					}
				}
			}
			zb := m.Arrange(p.Input(tensor.FromData(zr, n, h, w, c)))
			xr, _ := m.Inverse(zb)
			cols = append(cols, append([]float32(nil), xr.Data...))
			lastZ = zr
		}
		p.Close()
		label := s[0] + " " + s[1]
		before[label], after[label] = zimg, lastZ
		var tiles [][]float32
		arr := make([]float32, 0, n*len(cols)*d)
		for e := range n {
			for _, col := range cols {
				tile := col[e*d : (e+1)*d]
				arr = append(arr, tile...)
				shown := make([]float32, d)
				for j, v := range tile {
					shown[j] = min(max(v, 0), 1)
				}
				tiles = append(tiles, shown)
			}
		}
		name := s[0] + "-" + s[1]
		if err := viz.ImageGrid(filepath.Join(opt.Out, "resample-"+name+".png"), tiles, h, w, c, len(cols)); err != nil {
			return nil, nil, err
		}
		if err := data.WriteNPYFile(filepath.Join(opt.Out, "resample-"+name+".npy"),
			&data.Array{DType: "<f4", Shape: []int{n, len(cols), h, w, c}, F32: arr}); err != nil {
			return nil, nil, err
		}
	}
	return before, after, nil
}
