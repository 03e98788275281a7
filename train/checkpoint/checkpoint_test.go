package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// newModel returns the small ResNet the tests save and load.
func newModel(seed uint64) *nn.ResNet {
	return nn.NewResNet(tensor.NewRNG(seed), 1, 4, 2, 1, true, &nn.Mode{})
}

// randomize fills every tensor of m, running statistics included, with
// values drawn from seed, so no tensor keeps its initial value.
func randomize(m nn.Module, seed uint64) {
	rng := tensor.NewRNG(seed)
	for _, t := range nn.Tensors(m) {
		rng.Uniform(t.T.Data, 0.1, 2)
	}
}

// sameModel reports the first tensor where a and b differ.
func sameModel(a, b nn.Module) error {
	ta, tb := nn.Tensors(a), nn.Tensors(b)
	if len(ta) != len(tb) {
		return fmt.Errorf("%d tensors vs %d", len(ta), len(tb))
	}
	for i := range ta {
		if ta[i].Name != tb[i].Name || !sameBits(ta[i].T, tb[i].T) {
			return fmt.Errorf("tensor %q differs", ta[i].Name)
		}
	}
	return nil
}

// sampleState returns a state with every field set, tagged by step.
func sampleState(t *testing.T, step int) State {
	rng := tensor.NewRNG(99)
	rng.Float64()
	rs, err := rng.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return State{
		Step:               step,
		Epoch:              3,
		BatchInEpoch:       17,
		RNG:                rs,
		Optimizer:          json.RawMessage(`{"kind":"adam","step":7}`),
		OptimizerTensors:   sampleMoments(float32(step)),
		Config:             json.RawMessage(`{"dataset":"mnist","blocks":8}`),
		BestTestBPD:        1.2345678901234567,
		TestBPD:            1.5,
		EvalPending:        true,
		EpochSteps:         17,
		EpochLoss:          60.25,
		EpochGradNorm:      0.1,
		ActNormInitialized: true,
		Extra:              map[string]string{"git": "abc123", "note": "ü"},
	}
}

// sampleMoments returns optimiser tensors whose values start at v.
func sampleMoments(v float32) map[string]*tensor.Tensor {
	return map[string]*tensor.Tensor{
		"m.w": tensor.FromData([]float32{v, v + 1, v + 2, v + 3, v + 4, v + 5}, 2, 3),
		"v.w": tensor.FromData([]float32{v * 2, v * 3, v * 4, v * 5, v * 6, v * 7}, 2, 3),
		"m.b": tensor.FromData([]float32{-v}, 1),
	}
}

// withoutOptimizer returns st as Load returns it: without the optimiser.
func withoutOptimizer(st State) State {
	st.Optimizer, st.OptimizerTensors = nil, nil
	return st
}

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveLoad(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "sub", "ckpt")
	m := newModel(1)
	randomize(m, 5)
	st := sampleState(t, 1000)
	if err := Save(dir, m, st); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{ModelFile, OptimizerFile, StateFile}) {
		t.Errorf("checkpoint holds %v", got)
	}

	m2 := newModel(2)
	if sameModel(m, m2) == nil {
		t.Fatal("models equal before loading")
	}
	got, err := Load(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameModel(m, m2); err != nil {
		t.Error(err)
	}
	if !reflect.DeepEqual(got, withoutOptimizer(st)) {
		t.Errorf("Load: state\n%+v\nwant\n%+v", got, withoutOptimizer(st))
	}
	m3 := newModel(3)
	got, err = LoadTraining(dir, m3)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameModel(m, m3); err != nil {
		t.Error(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("LoadTraining: state\n%+v\nwant\n%+v", got, st)
	}
	// Running statistics are buffers and must round-trip too.
	if !sameBits(m.InNorm.RunVar, m2.InNorm.RunVar) || !sameBits(m.Blocks[0].Norm2.RunMean, m2.Blocks[0].Norm2.RunMean) {
		t.Error("running statistics not restored")
	}
	// The restored generator continues where the saved one was.
	want, r := tensor.NewRNG(99), tensor.NewRNG(0)
	want.Float64()
	if err := r.UnmarshalBinary(got.RNG); err != nil {
		t.Fatal(err)
	}
	if a, b := want.Uint64(), r.Uint64(); a != b {
		t.Errorf("restored RNG draws %d, want %d", b, a)
	}
	// Loaded tensors do not alias the file's or each other's memory.
	m2.InConv.W.Data[0]++
	if m.InConv.W.Data[0] == m2.InConv.W.Data[0] {
		t.Error("models share memory")
	}

	// The model file is a plain safetensors file with our metadata.
	tensors, meta, err := ReadSafetensors(filepath.Join(dir, ModelFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(tensors) != len(nn.Tensors(m)) || meta["flowood_checkpoint_version"] != "2" {
		t.Errorf("%d tensors, metadata %v", len(tensors), meta)
	}
	if _, ok := tensors["blocks.0.out_norm.running_var"]; !ok {
		t.Errorf("running_var missing from %v", slices.Sorted(maps.Keys(tensors)))
	}

	// The optimiser file is one too, with the tensors' shapes.
	opt, meta, err := ReadSafetensors(filepath.Join(dir, OptimizerFile))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(opt, st.OptimizerTensors) || meta["format"] != "flowood-optimizer" {
		t.Errorf("%s: %v, metadata %v", OptimizerFile, opt, meta)
	}

	// Overwriting replaces the checkpoint and leaves nothing behind; a
	// state without optimiser tensors writes no optimiser file.
	randomize(m, 6)
	st2 := State{Step: 2000, BestTestBPD: math.Inf(1)}
	if err := Save(dir, m, st2); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{ModelFile, StateFile}) {
		t.Errorf("checkpoint holds %v", got)
	}
	got2, err := LoadTraining(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameModel(m, m2); err != nil {
		t.Error(err)
	}
	if !math.IsInf(got2.BestTestBPD, 1) || got2.Step != 2000 || got2.RNG != nil || got2.Optimizer != nil || got2.OptimizerTensors != nil || got2.Extra != nil || got2.TestBPD != 0 {
		t.Errorf("state %+v, want %+v", got2, st2)
	}
	if got := entries(t, filepath.Dir(dir)); !slices.Equal(got, []string{"ckpt"}) {
		t.Errorf("parent holds %v", got)
	}
}

func TestStateSpecialFloats(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, -1.5e300, 5e-324} {
		b, err := encodeState(State{BestTestBPD: v, TestBPD: v, EpochLoss: v})
		if err != nil {
			t.Fatal(err)
		}
		st, _, err := decodeState(b, true)
		if err != nil {
			t.Fatalf("%v: %v in %s", v, err, b)
		}
		for _, got := range []float64{st.BestTestBPD, st.TestBPD, st.EpochLoss} {
			if got != v && !(math.IsNaN(got) && math.IsNaN(v)) {
				t.Errorf("%v round-tripped to %v in %s", v, got, b)
			}
		}
	}
}

func TestLoadBadState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	m := newModel(1)
	if err := Save(dir, m, State{Step: 1}); err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(dir, StateFile)
	cases := map[string]struct{ content, want string }{
		"future version":  {`{"format_version": 3, "step": 1}`, "unknown checkpoint format version 3 (this build reads versions 1 and 2)"},
		"v2 field in v1":  {`{"format_version": 1, "test_bpd": 1}`, `unknown field "test_bpd" for format version 1`},
		"bad opt file":    {`{"format_version": 2, "optimizer_file": "../x"}`, `optimizer_file "../x"`},
		"no version":      {`{"step": 1}`, "no format_version"},
		"not json":        {`{"format_version": 1,`, "not valid JSON"},
		"unknown field":   {`{"format_version": 2, "stepp": 1}`, "unknown field"},
		"bad float":       {`{"format_version": 1, "best_test_bpd": "inf"}`, "invalid number"},
		"string version":  {`{"format_version": "1"}`, "not valid JSON"},
		"bad optimizer":   {`{"format_version": 1, "optimizer": }`, "not valid JSON"},
		"bad test bpd":    {`{"format_version": 2, "test_bpd": "x"}`, "invalid number"},
		"step not an int": {`{"format_version": 1, "step": 1.5}`, "invalid"},
	}
	for name, c := range cases {
		if err := os.WriteFile(statePath, []byte(c.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir, m)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), statePath) {
			t.Errorf("%s: error %v, want one naming %s and containing %q", name, err, statePath, c.want)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "absent"), m); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent checkpoint: %v", err)
	}
	for _, d := range []string{"", ".", "/"} {
		if err := Save(d, m, State{}); err == nil {
			t.Errorf("Save(%q) succeeded", d)
		}
	}
}

func TestSaveInvalid(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := Save(dir, newModel(1), State{Optimizer: json.RawMessage(`{not json`)}); err == nil {
		t.Error("invalid optimizer JSON saved")
	}
	if _, err := os.Stat(filepath.Dir(dir)); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, filepath.Dir(dir)); len(got) != 0 {
		t.Errorf("failed Save left %v", got)
	}
	// A file in the way.
	if err := os.WriteFile(dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(dir, newModel(1), State{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Save over a file: %v", err)
	}
	if got := entries(t, filepath.Dir(dir)); !slices.Equal(got, []string{"ckpt"}) {
		t.Errorf("failed Save left %v", got)
	}
}

// listModule is a Module over named tensors, for LoadInto tests.
type listModule []nn.Named

func (l listModule) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	for _, n := range l {
		fn(nn.Join(prefix, n.Name), n.T, n.Trainable)
	}
}

func TestLoadIntoMismatch(t *testing.T) {
	m := listModule{
		{Name: "a", T: tensor.Full(1, 2)},
		{Name: "b", T: tensor.Full(1, 3)},
		{Name: "c", T: tensor.Full(1, 1)},
		{Name: "e", T: tensor.Full(1, 2, 2)},
		{Name: "f", T: tensor.Full(1, 1)},
	}
	err := LoadInto(m, map[string]*tensor.Tensor{
		"a": tensor.Full(2, 2), // fine
		"b": tensor.Full(2, 4), // wrong shape
		"e": tensor.Full(2, 4), // wrong shape
		"d": tensor.Full(2, 1), // unexpected
		"z": tensor.Full(2, 1), // unexpected
		"f": {Shape: []int{1}}, // data does not fill the shape
		// c missing
	})
	var me *MismatchError
	if !errors.As(err, &me) {
		t.Fatalf("error %v, want a *MismatchError", err)
	}
	want := &MismatchError{
		Missing:    []string{"c"},
		Unexpected: []string{"d", "z"},
		Shapes:     []ShapeMismatch{{"b", []int{4}, []int{3}}, {"e", []int{4}, []int{2, 2}}},
		Invalid:    []string{"f"},
	}
	if !reflect.DeepEqual(me, want) {
		t.Errorf("error %+v, want %+v", me, want)
	}
	for _, s := range []string{"1 missing from the checkpoint: c", "2 unexpected (not in the model): d, z", "b (checkpoint [4], model [3])", "e (checkpoint [4], model [2 2])", "invalid in the checkpoint: f"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	for _, n := range m {
		if n.T.Data[0] != 1 {
			t.Errorf("failed LoadInto changed %q", n.Name)
		}
	}

	dup := listModule{{Name: "a", T: tensor.Full(1, 1)}, {Name: "a", T: tensor.Full(1, 1)}}
	if err := LoadInto(dup, map[string]*tensor.Tensor{"a": tensor.Full(2, 1)}); err == nil || !strings.Contains(err.Error(), "duplicated in the model: a") {
		t.Errorf("duplicate names: %v", err)
	}

	// A checkpoint of a differently sized model.
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := Save(dir, newModel(1), State{}); err != nil {
		t.Fatal(err)
	}
	wide := nn.NewResNet(tensor.NewRNG(1), 1, 8, 2, 2, true, &nn.Mode{})
	before := nn.Tensors(wide)[0].T.Clone()
	_, err = Load(dir, wide)
	if !errors.As(err, &me) || len(me.Missing) == 0 || len(me.Shapes) == 0 || !strings.Contains(err.Error(), dir) {
		t.Errorf("loading into a wider model: %v", err)
	}
	if !sameBits(before, nn.Tensors(wide)[0].T) {
		t.Error("failed Load changed the model")
	}
}

// saveVersion saves a model and state tagged v into dir.
func saveVersion(t *testing.T, dir string, v int) error {
	t.Helper()
	m := newModel(1)
	randomize(m, uint64(v))
	return Save(dir, m, State{Step: v, OptimizerTensors: sampleMoments(float32(v))})
}

// loadVersion loads dir, checks the state and the tensors are of the same
// version, and returns it.
func loadVersion(t *testing.T, dir string) (int, error) {
	t.Helper()
	m := newModel(3)
	st, err := LoadTraining(dir, m)
	if err != nil {
		return 0, err
	}
	want := newModel(1)
	randomize(want, uint64(st.Step))
	if err := sameModel(m, want); err != nil {
		t.Errorf("state says version %d but the tensors differ: %v", st.Step, err)
	}
	if !reflect.DeepEqual(st.OptimizerTensors, sampleMoments(float32(st.Step))) {
		t.Errorf("state says version %d but the optimiser's tensors differ", st.Step)
	}
	return st.Step, nil
}

var saveSteps = []string{"tmp-created", "model-written", "optimizer-written", "state-written", "old-moved", "swapped"}

// TestSaveFailureKeepsPrevious makes Save fail at each step and checks the
// previous checkpoint is still there and nothing is left behind.
func TestSaveFailureKeepsPrevious(t *testing.T) {
	defer func() { testHook = nil }()
	for _, step := range saveSteps[:5] {
		t.Run(step, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "ckpt")
			if err := saveVersion(t, dir, 1); err != nil {
				t.Fatal(err)
			}
			injected := errors.New("injected")
			testHook = func(s string) error {
				if s == step {
					return injected
				}
				return nil
			}
			err := saveVersion(t, dir, 2)
			testHook = nil
			if !errors.Is(err, injected) {
				t.Fatalf("Save: %v", err)
			}
			if v, err := loadVersion(t, dir); err != nil || v != 1 {
				t.Errorf("after the failed Save: version %d, %v", v, err)
			}
			if got := entries(t, parent); !slices.Equal(got, []string{"ckpt"}) {
				t.Errorf("failed Save left %v", got)
			}
		})
	}
}

// TestSaveCrash simulates a crash at each step of Save and checks that
// Load finds a complete checkpoint (the old one before the swap starts,
// the new one after) and that the next Save cleans up.
func TestSaveCrash(t *testing.T) {
	defer func() { testHook = nil }()
	want := map[string]int{"tmp-created": 1, "model-written": 1, "optimizer-written": 1, "state-written": 1, "old-moved": 2, "swapped": 2}
	for _, step := range saveSteps {
		t.Run(step, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "ckpt")
			if err := saveVersion(t, dir, 1); err != nil {
				t.Fatal(err)
			}
			testHook = func(s string) error {
				if s == step {
					return errSimulatedCrash
				}
				return nil
			}
			err := saveVersion(t, dir, 2)
			testHook = nil
			if !errors.Is(err, errSimulatedCrash) {
				t.Fatalf("Save: %v", err)
			}
			if v, err := loadVersion(t, dir); err != nil || v != want[step] {
				t.Errorf("after a crash: version %d, %v; want %d", v, err, want[step])
			}
			if err := saveVersion(t, dir, 3); err != nil {
				t.Fatal(err)
			}
			if v, err := loadVersion(t, dir); err != nil || v != 3 {
				t.Errorf("after the next Save: version %d, %v", v, err)
			}
			if got := entries(t, parent); !slices.Equal(got, []string{"ckpt"}) {
				t.Errorf("leftovers %v", got)
			}
		})
	}

	// A crash during the first Save leaves no checkpoint, and the next
	// Save works.
	parent := t.TempDir()
	dir := filepath.Join(parent, "ckpt")
	testHook = func(s string) error {
		if s == "state-written" {
			return errSimulatedCrash
		}
		return nil
	}
	saveVersion(t, dir, 1)
	testHook = nil
	if _, err := loadVersion(t, dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a crashed first Save: %v", err)
	}
	if err := saveVersion(t, dir, 2); err != nil {
		t.Fatal(err)
	}
	if v, err := loadVersion(t, dir); err != nil || v != 2 {
		t.Errorf("version %d, %v", v, err)
	}
	if got := entries(t, parent); !slices.Equal(got, []string{"ckpt"}) {
		t.Errorf("leftovers %v", got)
	}
}

// TestSaveReadOnlyParent makes Save fail for real: the parent directory
// cannot be written, so the previous checkpoint must survive.
func TestSaveReadOnlyParent(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "ckpt")
	if err := saveVersion(t, dir, 1); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(parent, 0o755)
	if f, err := os.Create(filepath.Join(parent, "probe")); err == nil {
		f.Close()
		t.Skip("read-only directory is writable (running as root?)")
	}
	if err := saveVersion(t, dir, 2); err == nil {
		t.Fatal("Save into a read-only directory succeeded")
	}
	if v, err := loadVersion(t, dir); err != nil || v != 1 {
		t.Errorf("version %d, %v", v, err)
	}
}

// TestLoadVersion1 loads a checkpoint of format version 1, whose
// state.json holds the optimiser's moments as JSON and no optimiser file:
// Load skips the moments, LoadTraining returns them as they are in the file.
func TestLoadVersion1(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	m := newModel(1)
	randomize(m, 4)
	if err := Save(dir, m, State{}); err != nil {
		t.Fatal(err)
	}
	v1 := `{"format_version":1,"step":12,"epoch":1,"batch_in_epoch":2,"rng":"cGNnOnvVQZV0lT6QEhlumXlHJPg=",` +
		`"optimizer":{"kind":"adam", "step":12,"m":[[0.5,-1],[2]],"v":[[0.25,1],[4]]},"config":{"a": 1},` +
		`"best_test_bpd":"+Inf","actnorm_initialized":false}`
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(v1), 0o644); err != nil {
		t.Fatal(err)
	}
	m2 := newModel(2)
	st, err := Load(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameModel(m, m2); err != nil {
		t.Error(err)
	}
	if st.Step != 12 || st.Epoch != 1 || st.BatchInEpoch != 2 || len(st.RNG) != 20 || st.Optimizer != nil ||
		string(st.Config) != `{"a":1}` || !math.IsInf(st.BestTestBPD, 1) || !math.IsNaN(st.TestBPD) {
		t.Errorf("Load: %+v", st)
	}
	st, err = LoadTraining(dir, m2)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"kind":"adam", "step":12,"m":[[0.5,-1],[2]],"v":[[0.25,1],[4]]}`; string(st.Optimizer) != want || st.OptimizerTensors != nil {
		t.Errorf("LoadTraining: optimizer %s, tensors %v; want %s and none", st.Optimizer, st.OptimizerTensors, want)
	}
}

// TestLoadMissingOptimizer removes the optimiser file of a checkpoint
// whose state.json names it: LoadTraining fails naming the file, Load
// (which does not need it) succeeds.
func TestLoadMissingOptimizer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ckpt")
	m := newModel(1)
	if err := Save(dir, m, sampleState(t, 3)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, OptimizerFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTraining(dir, m); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadTraining without %s: %v", OptimizerFile, err)
	}
	if _, err := Load(dir, m); err != nil {
		t.Errorf("Load without %s: %v", OptimizerFile, err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTraining(dir, m); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("LoadTraining with a corrupt %s: %v", OptimizerFile, err)
	}
}
