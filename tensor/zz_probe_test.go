package tensor

import (
	"fmt"
	"math"
	"testing"
)

func TestZZProbeBN(t *testing.T) {
	rng := gcRNG(42)
	for _, c := range []struct{ rows int; mean, std float64 }{{64, 10, 0.1}, {64, 3, 0.5}, {4096, 10, 0.1}, {4096, 100, 1}, {64, 100, 1}, {1000, 1000, 1}, {512, 0.5, 0.3}} {
		x := normal(rng, c.mean, c.std, c.rows, 2)
		g, b := Full(1, 2), New(2)
		y := BatchNorm(x, g, b, &BatchNormStats{Eps: 1e-5}, true)
		ref := refBatchNorm(toArr(x), toArr(g), toArr(b), nil, nil, 1e-5)
		worst := 0.0
		for i := range ref.data {
			worst = math.Max(worst, math.Abs(float64(y.Data[i])-ref.data[i]))
		}
		fmt.Printf("rows %d mean %v std %v: max abs err %.3g\n", c.rows, c.mean, c.std, worst)
	}
}
