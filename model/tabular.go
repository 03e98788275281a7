package model

import (
	"fmt"

	"github.com/flowood/flowood/internal/jsonstrict"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/tabular"
	"github.com/flowood/flowood/tensor"
)

// Bounds on a tabular RealNVP's sizes in config.json: far above the
// paper's (8 couplings, up to 3 hidden layers of 512), and a bound on the
// parameter count (2^27 float32 values, 512 MiB) so that building the
// model of a corrupt or hostile config.json cannot exhaust memory.
const (
	maxTabularCouplings = 256
	maxTabularHidden    = 16384
	maxTabularLayers    = 64
	maxTabularParams    = 1 << 27
)

// tabularTrain holds the training hyperparameters of each preset: paper
// and embedding are App. O.1 (AdamW, weight decay 1e-3; UCI: lr 1e-4,
// batch 32, 100 epochs; embeddings: lr 1e-3, batch 1024, 120 epochs);
// cpu and tiny are for short runs.
var tabularTrain = map[string]TrainDefaults{
	"paper":     {Epochs: 100, Batch: 32, LR: 1e-4, WeightDecay: 1e-3, Optimizer: "adamw"},
	"embedding": {Epochs: 120, Batch: 1024, LR: 1e-3, WeightDecay: 1e-3, Optimizer: "adamw"},
	"cpu":       {Epochs: 20, Batch: 64, LR: 1e-3, WeightDecay: 1e-3, Optimizer: "adamw"},
	"tiny":      {Epochs: 2, Batch: 32, LR: 1e-3, WeightDecay: 1e-3, Optimizer: "adamw"},
}

func init() {
	register(&Entry{
		Name:    "tabular",
		Doc:     "RealNVP for feature vectors: affine couplings with alternating half masks and fully connected st-networks (App. O.1)",
		Kinds:   []datakind.Kind{datakind.Tabular},
		Presets: tabular.PresetNames(),
		preset: func(name string, s datakind.Shape, _ string) (Config, TrainDefaults, error) {
			c, err := tabular.Preset(name, s.Features)
			if err != nil {
				return nil, TrainDefaults{}, err
			}
			return c, tabularTrain[name], nil
		},
		decode: func(b []byte) (Config, error) {
			var c tabular.Config
			if err := jsonstrict.Decode(b, &c); err != nil {
				return nil, err
			}
			return c, nil
		},
		fit:   fitTabular,
		build: func(cfg Config, rng *tensor.RNG) (Model, error) { return tabular.New(cfg.(tabular.Config), rng), nil },
		// No replicas: at the paper's sizes a step is a few small matrix
		// products, too little work to split across cores.
	})
}

// fitTabular sets the feature count of c from s where c leaves it out,
// refuses one that differs, fills the defaults and bounds the sizes.
func fitTabular(cfg Config, s datakind.Shape) (Config, error) {
	c := cfg.(tabular.Config)
	if c.Features == 0 {
		c.Features = s.Features
	} else if c.Features != s.Features {
		return nil, fmt.Errorf("features %d differs from the data's features %d", c.Features, s.Features)
	}
	c = c.WithDefaults()
	switch {
	case c.Couplings < 1 || c.Couplings > maxTabularCouplings:
		return nil, fmt.Errorf("couplings %d is out of range [1, %d]", c.Couplings, maxTabularCouplings)
	case c.Hidden < 1 || c.Hidden > maxTabularHidden:
		return nil, fmt.Errorf("hidden %d is out of range [1, %d]", c.Hidden, maxTabularHidden)
	case c.Layers < -1 || c.Layers > maxTabularLayers:
		return nil, fmt.Errorf("layers %d is out of range [-1, %d] (-1: no hidden x hidden layer)", c.Layers, maxTabularLayers)
	case c.Params() > maxTabularParams:
		return nil, fmt.Errorf("%d couplings of %d hidden units and %d layers on %d features have %d parameters, more than %d",
			c.Couplings, c.Hidden, c.HiddenLayers(), c.Features, c.Params(), maxTabularParams)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
