package experiment

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/runfile"
)

// TestPerturbed checks the background model's inputs: about a fraction
// mu of the values differ from the clean dequantised ones (drawn with an
// identically seeded generator), every value stays in [0, 1], and the
// same generator state gives the same perturbation (so resume is exact).
func TestPerturbed(t *testing.T) {
	sh, err := DataShape("fashionmnist")
	if err != nil {
		t.Fatal(err)
	}
	x, err := LoadExamples(runfile.Data{Name: "fashionmnist", Shape: sh, Embedded: true}, "", "train")
	if err != nil {
		t.Fatal(err)
	}
	const mu = 0.2
	idx := data.SampleIndices(x.Len(), 64, 1)
	d := 64 * 784
	clean, noisy, again := make([]float32, d), make([]float32, d), make([]float32, d)
	x.Read(clean, idx, rand.New(rand.NewPCG(5, 6)))
	p := perturbed{x, mu}
	p.Read(noisy, idx, rand.New(rand.NewPCG(5, 6)))
	p.Read(again, idx, rand.New(rand.NewPCG(5, 6)))
	changed := 0
	for i := range clean {
		if noisy[i] != again[i] {
			t.Fatal("the same generator state gave another perturbation")
		}
		if noisy[i] < 0 || noisy[i] > 1 || math.IsNaN(float64(noisy[i])) {
			t.Fatalf("value %v outside [0, 1]", noisy[i])
		}
		if noisy[i] != clean[i] {
			changed++
		}
	}
	// Binomial(d, mu) (a replacement equal to the clean value, same pixel
	// and same noise, has probability ~0); 5 standard deviations.
	want := float64(d) * mu
	if sd := math.Sqrt(want * (1 - mu)); math.Abs(float64(changed)-want) > 5*sd {
		t.Errorf("%d of %d values perturbed, want about %.0f", changed, d, want)
	}
}
