package train

import (
	"fmt"
	"slices"

	"github.com/flowood/flowood/tensor"
)

// OptimizerState is what an optimiser needs to continue exactly where it
// stopped: its kind, its step count and its per-parameter buffers.
type OptimizerState struct {
	// Kind is "adam" (Adam and AdamW) or "rmsprop".
	Kind string
	// Step is the number of steps taken.
	Step int
	// Buffers maps each buffer's name ("m" and "v" for Adam, "v" for
	// RMSprop) to one slice per parameter, in the order of the parameters
	// given to Step, each as long as its parameter. It is empty before the
	// first step.
	Buffers map[string][][]float32
}

// State implements Optimizer. The buffers are Adam's own, not copies.
func (a *Adam) State() OptimizerState {
	s := OptimizerState{Kind: "adam", Step: a.step}
	if a.m != nil {
		s.Buffers = map[string][][]float32{"m": a.m, "v": a.v}
	}
	return s
}

// SetState implements Optimizer: Adam takes s's buffers (not copied),
// after checking that they fit params.
func (a *Adam) SetState(s OptimizerState, params []*tensor.Tensor) error {
	if err := checkState(s, "adam", []string{"m", "v"}, params); err != nil {
		return err
	}
	a.step, a.m, a.v = s.Step, s.Buffers["m"], s.Buffers["v"]
	return nil
}

// State implements Optimizer. The buffers are RMSprop's own, not copies.
func (r *RMSprop) State() OptimizerState {
	s := OptimizerState{Kind: "rmsprop", Step: r.step}
	if r.v != nil {
		s.Buffers = map[string][][]float32{"v": r.v}
	}
	return s
}

// SetState implements Optimizer: RMSprop takes s's buffers (not copied),
// after checking that they fit params.
func (r *RMSprop) SetState(s OptimizerState, params []*tensor.Tensor) error {
	if err := checkState(s, "rmsprop", []string{"v"}, params); err != nil {
		return err
	}
	r.step, r.v = s.Step, s.Buffers["v"]
	return nil
}

// checkState reports a state that is not of the given kind or whose
// buffers are not exactly the named ones (or none), one slice per
// parameter of its length.
func checkState(s OptimizerState, kind string, buffers []string, params []*tensor.Tensor) error {
	if s.Kind != kind {
		return fmt.Errorf("optimizer state is %q, want %s", s.Kind, kind)
	}
	if s.Step < 0 {
		return fmt.Errorf("optimizer state has step %d", s.Step)
	}
	if len(s.Buffers) == 0 {
		return nil
	}
	for name, b := range s.Buffers {
		if !slices.Contains(buffers, name) {
			return fmt.Errorf("%s optimizer state has an unknown buffer %q (want %v)", kind, name, buffers)
		}
		if len(b) != len(params) {
			return fmt.Errorf("optimizer state %q has %d tensors, model has %d parameters", name, len(b), len(params))
		}
		for i, p := range params {
			if len(b[i]) != len(p.Data) {
				return fmt.Errorf("optimizer state %q tensor %d has %d values, parameter has %d", name, i, len(b[i]), len(p.Data))
			}
		}
	}
	for _, name := range buffers {
		if _, ok := s.Buffers[name]; !ok {
			return fmt.Errorf("%s optimizer state lacks buffer %q", kind, name)
		}
	}
	return nil
}

// optimizerJSON is the optimiser's part of state.json: its kind and step
// count, and the names of its buffers (stored as tensors beside it).
// Checkpoints of format version 1 held the buffers here instead, as
// arrays M and V.
type optimizerJSON struct {
	Kind    string      `json:"kind"`
	Step    int         `json:"step"`
	Buffers []string    `json:"buffers,omitempty"`
	M       [][]float32 `json:"m,omitempty"`
	V       [][]float32 `json:"v,omitempty"`
}
