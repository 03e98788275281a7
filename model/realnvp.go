package model

import (
	"fmt"

	"github.com/flowood/flowood/internal/jsonstrict"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/tensor"
)

// Bounds on a RealNVP's sizes in config.json: far above the paper's
// (2-3 scales, 6 blocks, 64 channels doubling per scale) and below what
// would exhaust memory on building the model.
const (
	maxRealNVPScales    = 8
	maxRealNVPBlocks    = 64
	maxRealNVPChannels  = 2048 // hidden channels of the last scale: mid·2^(scales-1)
	maxRealNVPCouplings = 64   // of the appk layout (App. K: 8)
	// maxRealNVPBottleneck bounds the bottleneck dimension, whose two
	// layers hold 2·l·H·W·mid weights per coupling (App. K: l <= 150).
	maxRealNVPBottleneck = 4096
)

// realnvpTrain holds the training hyperparameters of each preset: paper
// is App. E for grayscale RealNVP; cpu and tiny are sized for small
// machines.
var realnvpTrain = map[string]TrainDefaults{
	"paper": {Epochs: 80, Batch: 32, LR: 5e-5, WeightDecay: 5e-5},
	"cpu":   {Epochs: 10, Batch: 64, LR: 1e-3, WeightDecay: 5e-5},
	"tiny":  {Epochs: 1, Batch: 32, LR: 1e-3},
	// App. K models: as paper and cpu.
	"appk":     {Epochs: 80, Batch: 32, LR: 5e-5, WeightDecay: 5e-5},
	"appk_cpu": {Epochs: 10, Batch: 64, LR: 1e-3, WeightDecay: 5e-5},
}

func init() {
	register(&Entry{
		Name:    "realnvp",
		Doc:     "RealNVP: multi-scale with checkerboard and channel-wise affine couplings (App. E), or one scale of 8 couplings (App. K, presets appk*); options mask, bottleneck",
		Kinds:   []datakind.Kind{datakind.Image},
		Presets: realnvp.PresetNames(),
		preset: func(name string, s datakind.Shape, _ string) (Config, TrainDefaults, error) {
			c, err := realnvp.Preset(name)
			if err != nil {
				return nil, TrainDefaults{}, err
			}
			c.Height, c.Width, c.Channels = s.Height, s.Width, s.Channels
			// App. E: 3 scales for colour 32x32 images.
			if s.Channels == 3 && s.Height == 32 {
				c.Scales = 3
			}
			return c, realnvpTrain[name], nil
		},
		decode: func(b []byte) (Config, error) {
			var c realnvp.Config
			if err := jsonstrict.Decode(b, &c); err != nil {
				return nil, err
			}
			return c, nil
		},
		fit:   fitRealNVP,
		build: func(cfg Config, rng *tensor.RNG) (Model, error) { return realnvp.New(cfg.(realnvp.Config), rng), nil },
		replicas: func(m Model, g *tensor.Group) ([]Model, error) {
			rm := m.(*realnvp.Model)
			// Not for models that recompute activations in the backward
			// pass, nor for st-networks of 64 hidden channels or more,
			// whose operations keep the cores busy when split (the paper
			// preset, batch 32 on 2 cores, measured 10.3 img/s
			// data-parallel against 10.5-10.8 without, and 15% more peak
			// memory; the cpu preset, 16 channels, 240 -> 280 img/s).
			if g.Size() < 2 || rm.Config.Recompute == "on" || rm.Config.Mid >= 64 {
				return nil, nil
			}
			reps, err := rm.Replicas(g)
			if err != nil {
				return nil, err
			}
			return asModels(reps), nil
		},
	})
}

// fitRealNVP sets the image shape of c from s where c leaves it out,
// refuses one that differs, fills the defaults and bounds the sizes.
func fitRealNVP(cfg Config, s datakind.Shape) (Config, error) {
	c := cfg.(realnvp.Config)
	if err := fitImageShape(&c.Height, &c.Width, &c.Channels, s); err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	switch {
	case c.Scales < 1 || c.Scales > maxRealNVPScales:
		return nil, fmt.Errorf("scales %d is out of range [1, %d]", c.Scales, maxRealNVPScales)
	case c.Blocks < 0 || c.Blocks > maxRealNVPBlocks:
		return nil, fmt.Errorf("blocks %d is out of range [0, %d]", c.Blocks, maxRealNVPBlocks)
	case c.Mid < 1 || c.Mid<<(c.Scales-1) > maxRealNVPChannels:
		return nil, fmt.Errorf("mid %d is out of range: mid·2^(scales-1) must be in [1, %d]", c.Mid, maxRealNVPChannels)
	case c.Couplings < 0 || c.Couplings > maxRealNVPCouplings:
		return nil, fmt.Errorf("couplings %d is out of range [0, %d]", c.Couplings, maxRealNVPCouplings)
	case c.Bottleneck < 0 || c.Bottleneck > maxRealNVPBottleneck:
		return nil, fmt.Errorf("bottleneck %d is out of range [0, %d] (0: none)", c.Bottleneck, maxRealNVPBottleneck)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
