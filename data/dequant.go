package data

import (
	"math/rand/v2"

	"github.com/flowood/flowood/data/pixels"
)

// Dequantize sets dst[i] = (pix[i] + e)/256 with e uniform on [0, 1) from
// rng, or e = 1/2 (the midpoint) when rng is nil (pixels.Dequantize).
func Dequantize(dst []float32, pix []uint8, rng *rand.Rand) { pixels.Dequantize(dst, pix, rng) }
