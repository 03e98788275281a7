package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/flowood/flowood/internal/jsonfloat"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// FormatVersion is the version of the checkpoint layout Save writes:
// version 2 keeps the optimiser's moments in optimizer.safetensors.
// Load also reads version 1, whose state.json holds the moments as JSON
// (LoadTraining hands them back in State.Optimizer), and refuses any
// other version.
const FormatVersion = 2

const (
	// ModelFile is the name of the safetensors file of a checkpoint.
	ModelFile = "model.safetensors"
	// OptimizerFile is the name of the safetensors file holding the
	// optimiser's per-parameter buffers (State.OptimizerTensors).
	OptimizerFile = "optimizer.safetensors"
	// StateFile is the name of the JSON file holding a checkpoint's State.
	StateFile = "state.json"
)

// State is the training state saved next to the model, enough to resume
// a run where it stopped.
type State struct {
	Step         int `json:"step"`
	Epoch        int `json:"epoch"`
	BatchInEpoch int `json:"batch_in_epoch"`
	// RNG is the generator state from tensor.RNG.MarshalBinary.
	RNG []byte `json:"rng,omitempty"`
	// Optimizer is the optimiser's small state (its kind and step count),
	// stored verbatim (compacted) in state.json. In a version-1
	// checkpoint it holds the moments too, as JSON arrays. Only
	// LoadTraining reads it.
	Optimizer json.RawMessage `json:"optimizer,omitempty"`
	// OptimizerTensors are the optimiser's per-parameter buffers (Adam's
	// moments) by name, stored in optimizer.safetensors, which is written
	// only when there are any. Save reads them in place, without a copy;
	// only LoadTraining reads them back.
	OptimizerTensors map[string]*tensor.Tensor `json:"-"`
	// Config is the run configuration, stored verbatim (compacted).
	Config json.RawMessage `json:"config,omitempty"`
	// BestTestBPD may be infinite or NaN (before the first evaluation).
	BestTestBPD float64 `json:"best_test_bpd"`
	// TestBPD is the test bits/dim of the last evaluation, NaN before the
	// first (and in version-1 checkpoints, which did not record it).
	TestBPD float64 `json:"test_bpd"`
	// EvalPending is set when the steps of an epoch (or of the whole run)
	// are done but the evaluation that follows them is not: a resumed
	// run evaluates first.
	EvalPending bool `json:"eval_pending"`
	// EpochSteps is the number of steps taken so far in the current
	// epoch, and EpochLoss and EpochGradNorm the sums of their losses and
	// gradient norms, so a run resumed mid-epoch logs the mean over the
	// whole epoch.
	EpochSteps    int     `json:"epoch_steps"`
	EpochLoss     float64 `json:"epoch_loss"`
	EpochGradNorm float64 `json:"epoch_grad_norm"`

	ActNormInitialized bool              `json:"actnorm_initialized"`
	Extra              map[string]string `json:"extra,omitempty"`
}

// stateFile is the content of state.json: State with the format version,
// the name of the optimiser file and a JSON encoding of non-finite
// floats.
type stateFile struct {
	FormatVersion int             `json:"format_version"`
	Step          int             `json:"step"`
	Epoch         int             `json:"epoch"`
	BatchInEpoch  int             `json:"batch_in_epoch"`
	RNG           []byte          `json:"rng,omitempty"`
	Optimizer     json.RawMessage `json:"optimizer,omitempty"`
	// OptimizerFile names the file of State.OptimizerTensors, "" when
	// there is none (a Load that finds it missing fails).
	OptimizerFile      string            `json:"optimizer_file,omitempty"`
	Config             json.RawMessage   `json:"config,omitempty"`
	BestTestBPD        jsonFloat         `json:"best_test_bpd"`
	TestBPD            jsonFloat         `json:"test_bpd"`
	EvalPending        bool              `json:"eval_pending,omitempty"`
	EpochSteps         int               `json:"epoch_steps,omitempty"`
	EpochLoss          jsonFloat         `json:"epoch_loss,omitempty"`
	EpochGradNorm      jsonFloat         `json:"epoch_grad_norm,omitempty"`
	ActNormInitialized bool              `json:"actnorm_initialized"`
	Extra              map[string]string `json:"extra,omitempty"`
}

// v1Fields are the fields a version-1 state.json may hold; version 2
// adds the others of stateFile.
var v1Fields = []string{"format_version", "step", "epoch", "batch_in_epoch", "rng", "optimizer", "config",
	"best_test_bpd", "actnorm_initialized", "extra"}

// jsonFloat encodes NaN and infinities as strings (see jsonfloat.Float).
type jsonFloat = jsonfloat.Float

// encodeState returns the content of state.json for s: one line of
// compact JSON, with Optimizer and Config compacted.
func encodeState(s State) ([]byte, error) {
	f := stateFile{
		FormatVersion:      FormatVersion,
		Step:               s.Step,
		Epoch:              s.Epoch,
		BatchInEpoch:       s.BatchInEpoch,
		RNG:                s.RNG,
		Optimizer:          s.Optimizer,
		Config:             s.Config,
		BestTestBPD:        jsonFloat(s.BestTestBPD),
		TestBPD:            jsonFloat(s.TestBPD),
		EvalPending:        s.EvalPending,
		EpochSteps:         s.EpochSteps,
		EpochLoss:          jsonFloat(s.EpochLoss),
		EpochGradNorm:      jsonFloat(s.EpochGradNorm),
		ActNormInitialized: s.ActNormInitialized,
		Extra:              s.Extra,
	}
	if len(s.OptimizerTensors) > 0 {
		f.OptimizerFile = OptimizerFile
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// skipJSON is a JSON value that is scanned but not kept.
type skipJSON struct{}

// UnmarshalJSON implements json.Unmarshaler.
func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// decodeState parses state.json, checking its version first. Unknown
// fields are errors: a checkpoint of a version holds nothing else. Only
// with optimizer does it keep the optimiser's JSON, as it is in the file
// (in a version-1 file it holds the moments: ~14 bytes a value, 420 MB
// for the paper preset, not copied once more to compact them); Config
// comes back compacted. It returns the name of the optimiser's tensor
// file, "" if the checkpoint has none.
func decodeState(b []byte, optimizer bool) (State, string, error) {
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return State{}, "", fmt.Errorf("not valid JSON: %w", err)
	}
	switch {
	case v.FormatVersion == nil:
		return State{}, "", errors.New("no format_version")
	case *v.FormatVersion != FormatVersion && *v.FormatVersion != 1:
		return State{}, "", fmt.Errorf("unknown checkpoint format version %d (this build reads versions 1 and %d)", *v.FormatVersion, FormatVersion)
	}
	// The names of the fields, without keeping their values.
	var fields map[string]skipJSON
	if err := json.Unmarshal(b, &fields); err != nil {
		return State{}, "", fmt.Errorf("invalid: %w", err)
	}
	known := v1Fields
	if *v.FormatVersion == FormatVersion {
		known = jsonFields(reflect.TypeFor[stateFile]())
	}
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(known, name) {
			return State{}, "", fmt.Errorf("invalid: unknown field %q for format version %d", name, *v.FormatVersion)
		}
	}
	var f struct {
		stateFile
		Optimizer skipJSON `json:"optimizer"`
	}
	f.TestBPD = jsonFloat(math.NaN())
	if err := json.Unmarshal(b, &f); err != nil {
		return State{}, "", fmt.Errorf("invalid: %w", err)
	}
	if optimizer {
		var o struct {
			Optimizer json.RawMessage `json:"optimizer"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return State{}, "", fmt.Errorf("invalid: %w", err)
		}
		f.stateFile.Optimizer = o.Optimizer
	}
	if len(f.Config) > 0 {
		var buf bytes.Buffer
		json.Compact(&buf, f.Config) // cannot fail: Unmarshal checked it
		f.Config = buf.Bytes()
	}
	if f.OptimizerFile != "" && f.OptimizerFile != OptimizerFile {
		return State{}, "", fmt.Errorf("invalid: optimizer_file %q (want %q or none)", f.OptimizerFile, OptimizerFile)
	}
	return State{
		Step:               f.Step,
		Epoch:              f.Epoch,
		BatchInEpoch:       f.BatchInEpoch,
		RNG:                f.RNG,
		Optimizer:          f.stateFile.Optimizer,
		Config:             f.Config,
		BestTestBPD:        float64(f.BestTestBPD),
		TestBPD:            float64(f.TestBPD),
		EvalPending:        f.EvalPending,
		EpochSteps:         f.EpochSteps,
		EpochLoss:          float64(f.EpochLoss),
		EpochGradNorm:      float64(f.EpochGradNorm),
		ActNormInitialized: f.ActNormInitialized,
		Extra:              f.Extra,
	}, f.OptimizerFile, nil
}

// jsonFields returns the JSON names of the fields of struct type t.
func jsonFields(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// testHook, when set by tests, is called by Save after each step with the
// step's name. A non-nil error makes Save fail there as if the step had
// failed (undoing what it did); errSimulatedCrash makes Save return at once
// without undoing anything, as if the process had died.
var testHook func(step string) error

// errSimulatedCrash is the error testHook returns to simulate a crash.
var errSimulatedCrash = errors.New("simulated crash")

// Save writes m's tensors and state to the checkpoint directory dir,
// creating its parent if needed and replacing any checkpoint already
// there: model.safetensors, optimizer.safetensors when
// state.OptimizerTensors is not empty, and state.json. All files are written and synced in a new directory next to dir
// (".<base>.tmp-<n>"); then the old dir is renamed away (".<base>.old-<n>"),
// the new one renamed into place, and the old one removed. A Save that
// fails leaves the previous checkpoint in place. If the process dies
// during Save, either the previous checkpoint or the new one survives
// complete: at dir, or, if it died between the two renames, beside it,
// where Load finds it and the next Save moves it back into place. Save
// removes leftovers of interrupted Saves to dir. Concurrent Saves to the
// same dir are not supported.
//
// The safetensors files' metadata records the format and its version;
// State.Optimizer and State.Config must be valid JSON (or empty).
func Save(dir string, m nn.Module, state State) (err error) {
	parent, base, err := splitDir(dir)
	if err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("checkpoint: saving %s: %w", dir, err) }
	stateJSON, err := encodeState(state)
	if err != nil {
		return fail(fmt.Errorf("encoding state: %w", err))
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fail(err)
	}
	if err := repair(parent, base); err != nil {
		return fail(err)
	}

	var tmp, suffix string
	for range 100 {
		suffix = strconv.FormatUint(uint64(rand.Uint32()), 10)
		tmp = filepath.Join(parent, "."+base+".tmp-"+suffix)
		if err = os.Mkdir(tmp, 0o755); !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return fail(err)
	}
	old := filepath.Join(parent, "."+base+".old-"+suffix)
	crashed := false
	hook := func(step string) error {
		if testHook == nil {
			return nil
		}
		err := testHook(step)
		crashed = err == errSimulatedCrash
		return err
	}
	defer func() {
		if err != nil && !crashed {
			os.RemoveAll(tmp)
		}
	}()
	if err := hook("tmp-created"); err != nil {
		return fail(err)
	}
	meta := map[string]string{"format": "flowood", "flowood_checkpoint_version": strconv.Itoa(FormatVersion)}
	if err := WriteSafetensors(filepath.Join(tmp, ModelFile), nn.Tensors(m), meta); err != nil {
		return fail(err)
	}
	if err := hook("model-written"); err != nil {
		return fail(err)
	}
	if len(state.OptimizerTensors) > 0 {
		named := make([]nn.Named, 0, len(state.OptimizerTensors))
		for name, t := range state.OptimizerTensors {
			named = append(named, nn.Named{Name: name, T: t})
		}
		meta := map[string]string{"format": "flowood-optimizer", "flowood_checkpoint_version": strconv.Itoa(FormatVersion)}
		if err := WriteSafetensors(filepath.Join(tmp, OptimizerFile), named, meta); err != nil {
			return fail(err)
		}
		if err := hook("optimizer-written"); err != nil {
			return fail(err)
		}
	}
	err = writeFileAtomic(filepath.Join(tmp, StateFile), func(w *bufio.Writer) error {
		_, err := w.Write(stateJSON)
		return err
	})
	if err != nil {
		return fail(err)
	}
	if err := hook("state-written"); err != nil {
		return fail(err)
	}
	if err := syncDir(tmp); err != nil {
		return fail(err)
	}
	if err := syncDir(parent); err != nil {
		return fail(err)
	}

	fi, err := os.Lstat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return fail(errors.New("exists and is not a directory"))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fail(err)
	}
	hadOld := err == nil
	if hadOld {
		if _, err := os.Lstat(old); !errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("%s is in the way", old))
		}
		if err := os.Rename(dir, old); err != nil {
			return fail(err)
		}
		if err := hook("old-moved"); err != nil {
			if !crashed {
				os.Rename(old, dir)
			}
			return fail(err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if hadOld {
			os.Rename(old, dir)
		}
		return fail(err)
	}
	if err := syncDir(parent); err != nil {
		// The new checkpoint is in place; only its durability is in doubt.
		return fail(err)
	}
	if err := hook("swapped"); err != nil {
		return fail(err)
	}
	if hadOld {
		os.RemoveAll(old) // best effort: the next Save removes leftovers
	}
	return nil
}

// Load reads the checkpoint directory dir written by Save into m (every
// parameter and buffer must match by name and shape; see LoadInto) and
// returns the saved State without the optimiser's state (Optimizer and
// OptimizerTensors are nil): what evaluation needs, without reading or
// holding the moments. LoadTraining reads those too. If a Save to dir
// was interrupted between its two renames, Load reads the complete
// checkpoint left beside dir. It fails on a state.json of an unknown
// format version. m is changed only if Load succeeds.
func Load(dir string, m nn.Module) (State, error) { return load(dir, m, false) }

// LoadTraining is Load that also returns the optimiser's state, to resume
// training: State.OptimizerTensors from optimizer.safetensors, and
// State.Optimizer from state.json (in a version-1 checkpoint the moments
// are there, as JSON).
func LoadTraining(dir string, m nn.Module) (State, error) { return load(dir, m, true) }

func load(dir string, m nn.Module, optimizer bool) (State, error) {
	parent, base, err := splitDir(dir)
	if err != nil {
		return State{}, err
	}
	src := dir
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		alt, aerr := interrupted(parent, base)
		if aerr != nil {
			return State{}, fmt.Errorf("checkpoint: loading %s: %w", dir, aerr)
		}
		if alt == "" {
			return State{}, fmt.Errorf("checkpoint: loading %s: %w", dir, err)
		}
		src = alt
	}
	statePath := filepath.Join(src, StateFile)
	b, err := os.ReadFile(statePath)
	if err != nil {
		return State{}, fmt.Errorf("checkpoint: loading %s: %w", dir, err)
	}
	st, optFile, err := decodeState(b, optimizer)
	b = nil // a version-1 state.json may be hundreds of MB
	if err != nil {
		return State{}, fmt.Errorf("checkpoint: %s: %w", statePath, err)
	}
	if optimizer && optFile != "" {
		st.OptimizerTensors, _, err = ReadSafetensors(filepath.Join(src, optFile))
		if err != nil {
			return State{}, err
		}
	}
	tensors, _, err := ReadSafetensors(filepath.Join(src, ModelFile))
	if err != nil {
		return State{}, err
	}
	if err := LoadInto(m, tensors); err != nil {
		return State{}, fmt.Errorf("loading %s: %w", dir, err)
	}
	return st, nil
}

// splitDir returns the parent and base name of a checkpoint directory.
func splitDir(dir string) (parent, base string, err error) {
	clean := filepath.Clean(dir)
	parent, base = filepath.Dir(clean), filepath.Base(clean)
	if base == "." || base == ".." || base == string(filepath.Separator) || dir == "" {
		return "", "", fmt.Errorf("checkpoint: invalid checkpoint directory %q", dir)
	}
	return parent, base, nil
}

// leftovers lists the temporary (".<base>.tmp-<n>") and old
// (".<base>.old-<n>") directories of Saves to parent/base, by suffix.
func leftovers(parent, base string) (tmps, olds map[string]string, err error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return nil, nil, err
	}
	tmps, olds = map[string]string{}, map[string]string{}
	for _, e := range entries {
		for prefix, into := range map[string]map[string]string{"." + base + ".tmp-": tmps, "." + base + ".old-": olds} {
			suffix, ok := strings.CutPrefix(e.Name(), prefix)
			if ok && isDigits(suffix) {
				into[suffix] = filepath.Join(parent, e.Name())
			}
		}
	}
	return tmps, olds, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// interrupted returns the complete checkpoint a Save to parent/base left
// beside it when it died between renaming the old directory away and the
// new one into place, or "" if there is none. Once the old one is renamed
// away the new one is complete, so it is preferred; the old one is used if
// the new one is gone (a failed rollback).
func interrupted(parent, base string) (string, error) {
	tmps, olds, err := leftovers(parent, base)
	if err != nil {
		return "", err
	}
	var found []string
	for suffix, old := range olds {
		if tmp, ok := tmps[suffix]; ok {
			found = append(found, tmp)
		} else {
			found = append(found, old)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("several interrupted saves left checkpoints beside it: %s", strings.Join(found, ", "))
}

// repair finishes the swap of an interrupted Save to parent/base and
// removes the leftovers of interrupted Saves.
func repair(parent, base string) error {
	dir := filepath.Join(parent, base)
	_, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		alt, err := interrupted(parent, base)
		if err != nil {
			return err
		}
		if alt != "" {
			if err := os.Rename(alt, dir); err != nil {
				return err
			}
			if err := syncDir(parent); err != nil {
				return err
			}
		}
	} else if err != nil {
		return err
	}
	tmps, olds, err := leftovers(parent, base)
	if err != nil {
		return err
	}
	for _, m := range []map[string]string{tmps, olds} {
		for _, p := range m {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	return nil
}
