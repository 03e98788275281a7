package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flowood/flowood/internal/jsonfloat"

	"github.com/flowood/flowood/nn"
)

// FormatVersion is the version of the checkpoint layout Save writes. Load
// refuses checkpoints of any other version.
const FormatVersion = 1

const (
	// ModelFile is the name of the safetensors file of a checkpoint.
	ModelFile = "model.safetensors"
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
	// Optimizer is the optimiser's own serialisation, stored verbatim
	// (compacted).
	Optimizer json.RawMessage `json:"optimizer,omitempty"`
	// Config is the run configuration, stored verbatim (compacted).
	Config json.RawMessage `json:"config,omitempty"`
	// BestTestBPD may be infinite or NaN (before the first evaluation).
	BestTestBPD        float64           `json:"best_test_bpd"`
	ActNormInitialized bool              `json:"actnorm_initialized"`
	Extra              map[string]string `json:"extra,omitempty"`
}

// stateFile is the content of state.json: State with the format version
// and a JSON encoding of non-finite floats.
type stateFile struct {
	FormatVersion      int               `json:"format_version"`
	Step               int               `json:"step"`
	Epoch              int               `json:"epoch"`
	BatchInEpoch       int               `json:"batch_in_epoch"`
	RNG                []byte            `json:"rng,omitempty"`
	Optimizer          json.RawMessage   `json:"optimizer,omitempty"`
	Config             json.RawMessage   `json:"config,omitempty"`
	BestTestBPD        jsonFloat         `json:"best_test_bpd"`
	ActNormInitialized bool              `json:"actnorm_initialized"`
	Extra              map[string]string `json:"extra,omitempty"`
}

// jsonFloat encodes NaN and infinities as strings (see jsonfloat.Float).
type jsonFloat = jsonfloat.Float

// encodeState returns the content of state.json for s: one line of
// compact JSON (the optimiser state may be large), with Optimizer and
// Config compacted.
func encodeState(s State) ([]byte, error) {
	b, err := json.Marshal(stateFile{
		FormatVersion:      FormatVersion,
		Step:               s.Step,
		Epoch:              s.Epoch,
		BatchInEpoch:       s.BatchInEpoch,
		RNG:                s.RNG,
		Optimizer:          s.Optimizer,
		Config:             s.Config,
		BestTestBPD:        jsonFloat(s.BestTestBPD),
		ActNormInitialized: s.ActNormInitialized,
		Extra:              s.Extra,
	})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeState parses state.json, checking its version first. Unknown
// fields are errors: a checkpoint of this version holds nothing else.
// Optimizer and Config come back compacted, as encodeState wrote them.
func decodeState(b []byte) (State, error) {
	var v struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return State{}, fmt.Errorf("not valid JSON: %w", err)
	}
	switch {
	case v.FormatVersion == nil:
		return State{}, errors.New("no format_version")
	case *v.FormatVersion != FormatVersion:
		return State{}, fmt.Errorf("unknown checkpoint format version %d (this build reads version %d)", *v.FormatVersion, FormatVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f stateFile
	if err := dec.Decode(&f); err != nil {
		return State{}, fmt.Errorf("invalid: %w", err)
	}
	for _, raw := range []*json.RawMessage{&f.Optimizer, &f.Config} {
		if len(*raw) > 0 {
			var buf bytes.Buffer
			json.Compact(&buf, *raw) // cannot fail: the decoder checked it
			*raw = buf.Bytes()
		}
	}
	return State{
		Step:               f.Step,
		Epoch:              f.Epoch,
		BatchInEpoch:       f.BatchInEpoch,
		RNG:                f.RNG,
		Optimizer:          f.Optimizer,
		Config:             f.Config,
		BestTestBPD:        float64(f.BestTestBPD),
		ActNormInitialized: f.ActNormInitialized,
		Extra:              f.Extra,
	}, nil
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
// there. Both files are written and synced in a new directory next to dir
// (".<base>.tmp-<n>"); then the old dir is renamed away (".<base>.old-<n>"),
// the new one renamed into place, and the old one removed. A Save that
// fails leaves the previous checkpoint in place. If the process dies
// during Save, either the previous checkpoint or the new one survives
// complete: at dir, or, if it died between the two renames, beside it,
// where Load finds it and the next Save moves it back into place. Save
// removes leftovers of interrupted Saves to dir. Concurrent Saves to the
// same dir are not supported.
//
// The model file's metadata records the format and its version;
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
// returns the saved State. If a Save to dir was interrupted between its
// two renames, Load reads the complete checkpoint left beside dir. It
// fails on a state.json of another format version. m is changed only if
// Load succeeds.
func Load(dir string, m nn.Module) (State, error) {
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
	st, err := decodeState(b)
	if err != nil {
		return State{}, fmt.Errorf("checkpoint: %s: %w", statePath, err)
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
