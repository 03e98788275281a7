package train

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// Interval is how often the training loop saves its latest checkpoint
// between the checkpoints of epoch ends. The zero value means the
// default, DefaultCheckpointEvery; Off (any negative value) disables
// periodic checkpoints. In JSON it is a duration string ("10m0s") or
// "off".
type Interval time.Duration

// Off disables periodic checkpoints.
const Off Interval = -1

// DefaultCheckpointEvery is the default Interval: a run killed without
// warning loses at most this much work (plus the step under way).
const DefaultCheckpointEvery = Interval(10 * time.Minute)

// ParseInterval reads an Interval as given on the command line: a Go
// duration ("10m", "2s", "500ms"); "0" or "off" mean Off.
func ParseInterval(s string) (Interval, error) {
	if s == "off" {
		return Off, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("checkpoint interval %q: want a duration such as 10m or 30s, or off", s)
	}
	switch {
	case d < 0:
		return 0, fmt.Errorf("checkpoint interval %q is negative", s)
	case d == 0:
		return Off, nil
	}
	return Interval(d), nil
}

// String returns the interval as a duration string, or "off".
func (i Interval) String() string {
	if i < 0 {
		return "off"
	}
	return time.Duration(i).String()
}

// MarshalJSON implements json.Marshaler.
func (i Interval) MarshalJSON() ([]byte, error) { return json.Marshal(i.String()) }

// UnmarshalJSON implements json.Unmarshaler; it accepts what
// ParseInterval accepts.
func (i *Interval) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("checkpoint interval %s: want a string such as \"10m\" or \"off\"", b)
	}
	v, err := ParseInterval(s)
	if err != nil {
		return err
	}
	*i = v
	return nil
}

// trainable returns the trainable tensors of m with their names, in the
// order of nn.Params.
func trainable(m nn.Module) []nn.Named {
	var out []nn.Named
	for _, t := range nn.Tensors(m) {
		if t.Trainable {
			out = append(out, t)
		}
	}
	return out
}

// optimizerCheckpoint returns the optimiser's part of a checkpoint: the
// small JSON for state.json (kind, step and the names of the buffers)
// and the buffers as tensors named "<buffer>.<parameter>" (such as
// "m.blocks.0.in_conv.weight"), shaped like their parameters and sharing
// the optimiser's memory.
func optimizerCheckpoint(s OptimizerState, params []nn.Named) (json.RawMessage, map[string]*tensor.Tensor, error) {
	j := optimizerJSON{Kind: s.Kind, Step: s.Step}
	tensors := map[string]*tensor.Tensor{}
	for _, name := range slices.Sorted(maps.Keys(s.Buffers)) {
		bufs := s.Buffers[name]
		if len(bufs) != len(params) {
			return nil, nil, fmt.Errorf("optimizer buffer %q has %d tensors for %d parameters", name, len(bufs), len(params))
		}
		j.Buffers = append(j.Buffers, name)
		for i, p := range params {
			if len(bufs[i]) != len(p.T.Data) {
				return nil, nil, fmt.Errorf("optimizer buffer %q of %s has %d values, the parameter %d", name, p.Name, len(bufs[i]), len(p.T.Data))
			}
			tensors[name+"."+p.Name] = tensor.FromData(bufs[i], p.T.Shape...)
		}
	}
	b, err := json.Marshal(j)
	return b, tensors, err
}

// restoreOptimizer returns the optimiser state of a checkpoint loaded
// with checkpoint.LoadTraining, for params: from its optimiser tensors,
// or, in a checkpoint of format version 1, from the moments in
// state.json. Its errors name the file (in checkpoint folder dir) that
// does not fit.
func restoreOptimizer(st checkpoint.State, params []nn.Named, dir string) (OptimizerState, error) {
	statePath := filepath.Join(dir, checkpoint.StateFile)
	if len(st.Optimizer) == 0 {
		return OptimizerState{}, fmt.Errorf("%s: no optimizer state", statePath)
	}
	var j optimizerJSON
	if err := json.Unmarshal(st.Optimizer, &j); err != nil {
		return OptimizerState{}, fmt.Errorf("%s: optimizer state: %w", statePath, err)
	}
	s := OptimizerState{Kind: j.Kind, Step: j.Step}
	if j.M != nil || j.V != nil {
		// format version 1: the moments are in state.json
		if len(j.Buffers) > 0 || len(st.OptimizerTensors) > 0 {
			return OptimizerState{}, fmt.Errorf("%s: optimizer state has moments both in JSON and as tensors", statePath)
		}
		s.Buffers = map[string][][]float32{}
		if j.M != nil {
			s.Buffers["m"] = j.M
		}
		if j.V != nil {
			s.Buffers["v"] = j.V
		}
		for name, bufs := range s.Buffers {
			if len(bufs) != len(params) {
				return OptimizerState{}, fmt.Errorf("%s: optimizer moments %q have %d tensors, the model %d parameters", statePath, name, len(bufs), len(params))
			}
		}
		return s, nil
	}
	optPath := filepath.Join(dir, checkpoint.OptimizerFile)
	if len(j.Buffers) > 0 {
		s.Buffers = map[string][][]float32{}
	}
	used := 0
	var missing []string
	for _, name := range j.Buffers {
		bufs := make([][]float32, len(params))
		for i, p := range params {
			key := name + "." + p.Name
			t, ok := st.OptimizerTensors[key]
			switch {
			case !ok:
				missing = append(missing, key)
				continue
			case !tensor.SameShape(t.Shape, p.T.Shape) || len(t.Data) != len(p.T.Data):
				return OptimizerState{}, fmt.Errorf("%s: tensor %s has shape %v, the parameter %v", optPath, key, t.Shape, p.T.Shape)
			}
			bufs[i] = t.Data
			used++
		}
		s.Buffers[name] = bufs
	}
	if len(missing) > 0 {
		return OptimizerState{}, fmt.Errorf("%s: %d tensors missing (the model's parameters differ from the checkpoint's?): %s",
			optPath, len(missing), abbreviate(missing))
	}
	if used != len(st.OptimizerTensors) {
		var extra []string
		for key := range st.OptimizerTensors {
			name, param, _ := strings.Cut(key, ".")
			if !slices.Contains(j.Buffers, name) || !slices.ContainsFunc(params, func(p nn.Named) bool { return p.Name == param }) {
				extra = append(extra, key)
			}
		}
		slices.Sort(extra)
		return OptimizerState{}, fmt.Errorf("%s: %d tensors that fit no parameter: %s", optPath, len(extra), abbreviate(extra))
	}
	return s, nil
}

// abbreviate lists up to 5 names.
func abbreviate(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(", ... (%d more)", len(names)-5)
	}
	return strings.Join(names, ", ")
}

// resumeFrom loads the checkpoint folder dir into m, rng and opt and
// returns its state.
func resumeFrom(dir string, m nn.Module, opt Optimizer, rng *tensor.RNG) (checkpoint.State, error) {
	st, err := checkpoint.LoadTraining(dir, m)
	if err != nil {
		return st, err
	}
	if err := rng.UnmarshalBinary(st.RNG); err != nil {
		return st, fmt.Errorf("%s: RNG state: %w", filepath.Join(dir, checkpoint.StateFile), err)
	}
	named := trainable(m)
	s, err := restoreOptimizer(st, named, dir)
	if err != nil {
		return st, err
	}
	params := make([]*tensor.Tensor, len(named))
	for i, p := range named {
		params[i] = p.T
	}
	if err := opt.SetState(s, params); err != nil {
		return st, fmt.Errorf("%s: %w", dir, err)
	}
	// Now the optimiser's; a version-1 state.json's moments (420 MB of
	// JSON for the paper preset) are not kept for the whole run.
	st.Optimizer, st.OptimizerTensors = nil, nil
	return st, nil
}
