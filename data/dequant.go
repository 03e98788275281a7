package data

import "math/rand/v2"

// Dequantize writes u = (x + ε)/256 with ε ~ U[0, 1) for pixels x in
// {0..255}: uniform dequantisation onto [0, 1)^D. With rng nil, ε = 1/2
// (the deterministic midpoint).
func Dequantize(dst []float32, pix []uint8, rng *rand.Rand) {
	for i, x := range pix {
		e := 0.5
		if rng != nil {
			e = rng.Float64()
		}
		dst[i] = float32((float64(x) + e) / 256)
	}
}
