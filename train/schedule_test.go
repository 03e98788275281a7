package train

import "testing"

func TestLRAt(t *testing.T) {
	c := Config{LR: 1e-3, Warmup: 4}
	for step, want := range []float64{2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3} {
		if got := c.LRAt(step); got != want {
			t.Errorf("step %d: learning rate %g, want %g", step, got, want)
		}
	}
	c.Warmup = 0
	if got := c.LRAt(0); got != 1e-3 {
		t.Errorf("without warm-up: learning rate %g at step 0, want 1e-3", got)
	}
	if err := (Config{Batch: 2, LR: 1, Warmup: -1}).Validate(); err == nil {
		t.Error("negative warmup accepted")
	}
}
