package model

import (
	"fmt"

	"github.com/flowood/flowood/internal/jsonstrict"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/glow"
	"github.com/flowood/flowood/tensor"
)

// Bounds on a Glow's sizes in config.json: far above the paper's (2-3
// scales, 16 steps, 400 hidden units) and below what would exhaust memory
// on building the model.
const (
	maxGlowScales = 8
	maxGlowSteps  = 256
	maxGlowHidden = 4096
	maxGlowLayers = 64
)

// glowTrain holds the training hyperparameters of each preset: paper is
// App. E (RMSprop, lr 5e-5, batch 32, 80 epochs; the reference's weight
// decay 5e-5 on every parameter); every preset warms the learning rate
// up linearly over its first steps (Glow's NaN at the start of training).
var glowTrain = map[string]TrainDefaults{
	"paper": {Epochs: 80, Batch: 32, LR: 5e-5, WeightDecay: 5e-5, Optimizer: "rmsprop", Warmup: 500},
	"cpu":   {Epochs: 5, Batch: 64, LR: 1e-3, WeightDecay: 5e-5, Warmup: 200},
	"tiny":  {Epochs: 1, Batch: 32, LR: 1e-3, Warmup: 10},
}

func init() {
	register(&Entry{
		Name:    "glow",
		Doc:     "multi-scale Glow: actnorm, invertible 1x1 convolution, highway-network coupling (App. E)",
		Kinds:   []datakind.Kind{datakind.Image},
		Presets: glow.PresetNames(),
		preset: func(name string, s datakind.Shape, _ string) (Config, TrainDefaults, error) {
			c, err := glow.Preset(name)
			if err != nil {
				return nil, TrainDefaults{}, err
			}
			c.Height, c.Width, c.Channels = s.Height, s.Width, s.Channels
			// App. E: 3 scales x 8 steps, 400 hidden units for colour
			// 32x32 images.
			if name == "paper" && s.Channels == 3 && s.Height == 32 {
				c.Scales, c.Steps, c.Hidden = 3, 8, 400
			}
			return c, glowTrain[name], nil
		},
		decode: func(b []byte) (Config, error) {
			var c glow.Config
			if err := jsonstrict.Decode(b, &c); err != nil {
				return nil, err
			}
			return c, nil
		},
		fit:   fitGlow,
		build: func(cfg Config, rng *tensor.RNG) (Model, error) { return glow.New(cfg.(glow.Config), rng), nil },
		replicas: func(m Model, g *tensor.Group) ([]Model, error) {
			gm := m.(*glow.Model)
			if g.Size() < 2 || gm.Config.Hidden >= 64 {
				return nil, nil
			}
			reps, err := gm.Replicas(g)
			if err != nil {
				return nil, err
			}
			return asModels(reps), nil
		},
	})
}

// fitGlow sets the image shape of c from s where c leaves it out, refuses
// one that differs, fills the defaults and bounds the sizes.
func fitGlow(cfg Config, s datakind.Shape) (Config, error) {
	c := cfg.(glow.Config)
	if err := fitImageShape(&c.Height, &c.Width, &c.Channels, s); err != nil {
		return nil, err
	}
	c = c.WithDefaults()
	switch {
	case c.Scales < 1 || c.Scales > maxGlowScales:
		return nil, fmt.Errorf("scales %d is out of range [1, %d]", c.Scales, maxGlowScales)
	case c.Steps < 1 || c.Steps > maxGlowSteps:
		return nil, fmt.Errorf("steps %d is out of range [1, %d]", c.Steps, maxGlowSteps)
	case c.Hidden < 1 || c.Hidden > maxGlowHidden:
		return nil, fmt.Errorf("hidden %d is out of range [1, %d]", c.Hidden, maxGlowHidden)
	case c.Layers < 0 || c.Layers > maxGlowLayers:
		return nil, fmt.Errorf("layers %d is out of range [0, %d]", c.Layers, maxGlowLayers)
	case c.Channels<<(2*c.Scales) > 1<<16:
		return nil, fmt.Errorf("channels %d after %d squeezes: too many", c.Channels<<(2*c.Scales), c.Scales)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
