//go:build race

package kernels

// raceEnabled reports whether the race detector is on; tests then use
// fewer and smaller shapes.
const raceEnabled = true
