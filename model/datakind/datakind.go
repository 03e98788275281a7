// Package datakind holds what every model, the training loop and the
// scorers share about data: its kind (images, dequantised; tables, as
// they are), the shape of one example, the per-dimension loss (bits/dim
// for images: the only place that formula is written) and Examples, a
// data set to read model inputs from. It is a leaf: model packages,
// train and ood import it without importing one another.
package datakind

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Kind is a kind of data a model is a density of.
type Kind string

const (
	// Image data are pixels x in {0..255}, shape height x width x channels
	// (NHWC), dequantised before a model sees them: u = (x + ε)/256 with ε
	// ~ U[0, 1), so u lies in [0, 1)^D.
	Image Kind = "image"
	// Tabular data are real feature vectors of length Features, used as
	// they are (no dequantisation).
	Tabular Kind = "tabular"
)

// Bounds on the shapes Shape.Validate accepts: enough for every dataset
// of the paper (at most 64x64x3 images, a few thousand features), small
// enough that a model of the largest shape can be allocated, so that a
// corrupt or hostile config.json gets an error rather than an
// out-of-memory crash.
const (
	MaxSide     = 1024
	MaxChannels = 4
	MaxFeatures = 1 << 16
)

// Shape is the kind and shape of one example: Height x Width x Channels
// for images, Features for tables (the other fields are zero).
type Shape struct {
	Kind     Kind `json:"kind"`
	Height   int  `json:"height,omitempty"`
	Width    int  `json:"width,omitempty"`
	Channels int  `json:"channels,omitempty"`
	Features int  `json:"features,omitempty"`
}

// ImageShape returns the shape of h x w images with c channels.
func ImageShape(h, w, c int) Shape { return Shape{Kind: Image, Height: h, Width: w, Channels: c} }

// TabularShape returns the shape of feature vectors of length d.
func TabularShape(d int) Shape { return Shape{Kind: Tabular, Features: d} }

// ShapeOf returns the shape of examples whose tensor shape (without the
// batch dimension) is dims: rank 3 (H, W, C) is an image, rank 1 (D) a
// table row. It returns the zero Shape for any other rank.
func ShapeOf(dims []int) Shape {
	switch len(dims) {
	case 3:
		return ImageShape(dims[0], dims[1], dims[2])
	case 1:
		return TabularShape(dims[0])
	}
	return Shape{}
}

// Validate reports a shape that is not of a known kind or whose sizes are
// not positive or exceed MaxSide, MaxChannels or MaxFeatures. The error
// names the offending field as it is spelled in JSON.
func (s Shape) Validate() error {
	check := func(field string, v, hi int) error {
		if v < 1 || v > hi {
			return fmt.Errorf("%s %d is out of range [1, %d]", field, v, hi)
		}
		return nil
	}
	switch s.Kind {
	case Image:
		if err := check("height", s.Height, MaxSide); err != nil {
			return err
		}
		if err := check("width", s.Width, MaxSide); err != nil {
			return err
		}
		if err := check("channels", s.Channels, MaxChannels); err != nil {
			return err
		}
		if s.Features != 0 {
			return fmt.Errorf("features %d given for image data", s.Features)
		}
	case Tabular:
		if err := check("features", s.Features, MaxFeatures); err != nil {
			return err
		}
		if s.Height != 0 || s.Width != 0 || s.Channels != 0 {
			return fmt.Errorf("height, width or channels given for tabular data")
		}
	default:
		return fmt.Errorf("kind %q is not a data kind (want %q or %q)", s.Kind, Image, Tabular)
	}
	return nil
}

// Dim returns D, the number of values in one example.
func (s Shape) Dim() int {
	if s.Kind == Tabular {
		return s.Features
	}
	return s.Height * s.Width * s.Channels
}

// Dims returns the tensor shape of one example: [H, W, C] or [D].
func (s Shape) Dims() []int {
	if s.Kind == Tabular {
		return []int{s.Features}
	}
	return []int{s.Height, s.Width, s.Channels}
}

// String returns "28x28x1 image" or "43-feature tabular".
func (s Shape) String() string {
	if s.Kind == Tabular {
		return fmt.Sprintf("%d-feature tabular", s.Features)
	}
	return fmt.Sprintf("%dx%dx%d %s", s.Height, s.Width, s.Channels, s.Kind)
}

// BitsPerDim converts a log-density log p(u) (nats) of dequantised pixels
// u = (x + ε)/256 in [0, 1)^D into bits per dimension of the discrete
// pixels x:
//
//	bpd = -(log p(u) - D ln 256) / (D ln 2).
//
// The official RealNVP code models (x + ε)/256 too but reports with a
// 255/256 rescaling that adds D ln(255/256) to the log-likelihood;
// flowood uses the exact 256 scaling. This is the only place the formula
// is written; Shape.PerDim and Shape.Affine apply it.
func BitsPerDim(logProb float64, d int) float64 {
	return -(logProb - float64(d)*math.Log(256)) / (float64(d) * math.Ln2)
}

// PerDim converts a log-likelihood (nats) of one example into the
// per-dimension loss that training minimises and evaluation reports:
// bits per dimension (BitsPerDim) for images, nats per dimension,
// -log p(x)/D, for tables, where no quantisation applies.
func (s Shape) PerDim(logProb float64) float64 {
	d := s.Dim()
	if s.Kind == Tabular {
		return -logProb / float64(d)
	}
	return BitsPerDim(logProb, d)
}

// Affine returns a and b with PerDim(lp) = a·lp + b (up to rounding): a =
// -1/(D ln 2), b = log2 256 = 8 for images; a = -1/D, b = 0 for tables.
// Training applies them to the mean log-likelihood of a batch.
func (s Shape) Affine() (a, b float64) {
	d := float64(s.Dim())
	if s.Kind == Tabular {
		return -1 / d, 0
	}
	return -1 / (d * math.Ln2), 8
}

// Unit names what PerDim returns: "bits/dim" or "nats/dim".
func (s Shape) Unit() string {
	if s.Kind == Tabular {
		return "nats/dim"
	}
	return "bits/dim"
}

// Examples is a data set the pipeline trains on and scores: data.Images
// and data.Tabular implement it.
type Examples interface {
	// Len returns the number of examples.
	Len() int
	// Shape returns the tensor shape of one example: [H, W, C] for
	// images, [D] for tables (see ShapeOf).
	Shape() []int
	// Read writes the model inputs of the examples idx, in that order,
	// into dst (len(idx) times the product of Shape values): images
	// dequantised, u = (x + ε)/256 with ε drawn from rng in the order of
	// the values (ε = 1/2 where rng is nil), tables as they are.
	Read(dst []float32, idx []int, rng *rand.Rand)
	// Label names the set in messages, such as "fashionmnist test".
	Label() string
}
