package train

// LRAt returns the learning rate of step (counted from 0, as the
// checkpoint's step count): with Warmup > 0 it rises linearly from
// LR/Warmup at step 0 to LR at step Warmup-1 and stays there (Glow's
// warm-up, against the non-finite losses of its first steps at the full
// rate); without, it is LR. It depends on the step alone, so a resumed
// run steps with the rates of an uninterrupted one.
func (c Config) LRAt(step int) float64 {
	if c.Warmup <= 0 || step >= c.Warmup {
		return c.LR
	}
	return c.LR * float64(step+1) / float64(c.Warmup)
}
