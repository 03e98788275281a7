package experiment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/runfile"
)

// A Recipe reproduces one table or figure of the paper: it trains the
// runs it needs (reusing those already trained with the same
// configuration), evaluates them and writes DIR/report.md with the
// measured numbers beside the paper's.
type Recipe struct {
	ID    string
	Title string
	// Minutes is the expected wall time per preset on a 2-core machine.
	Minutes map[string]float64
	run     func(r *Reproduction) error
}

// Presets of reproduce: tiny (minutes, embedded data where it exists),
// cpu (laptop-sized models on the full data), paper (App. E's sizes).
var reproducePresets = []string{"tiny", "cpu", "paper"}

var recipes = map[string]*Recipe{}

func addRecipe(r *Recipe) { recipes[r.ID] = r }

// Recipes returns every recipe, sorted by ID.
func Recipes() []*Recipe {
	var out []*Recipe
	for _, r := range recipes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Reproduction is one recipe being run: where its runs and report go,
// and the report being written.
type Reproduction struct {
	Ctx      context.Context
	Preset   string
	Out      string
	Progress io.Writer

	report   bytes.Buffer
	commands []string
	// reused names the runs Train found already finished.
	reused  []string
	sources map[string]bool
	start   time.Time
}

// Reproduce runs the recipe id with preset into out and writes
// out/report.md (also when the recipe fails part-way: the report then
// says where it stopped).
func Reproduce(ctx context.Context, id, preset, out string, progress io.Writer) error {
	rec, ok := recipes[id]
	if !ok {
		var ids []string
		for _, r := range Recipes() {
			ids = append(ids, r.ID)
		}
		return fmt.Errorf("unknown experiment %q (known: %s)", id, strings.Join(ids, ", "))
	}
	okPreset := false
	for _, p := range reproducePresets {
		okPreset = okPreset || p == preset
	}
	if !okPreset {
		return fmt.Errorf("unknown preset %q (known: %s)", preset, strings.Join(reproducePresets, ", "))
	}
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	r := &Reproduction{Ctx: ctx, Preset: preset, Out: out, Progress: progress, sources: map[string]bool{}, start: time.Now()}
	fmt.Fprintf(&r.report, "# %s: %s\n\n", rec.ID, rec.Title)
	fmt.Fprintf(&r.report, "Preset `%s`; written by `flowood reproduce %s --preset %s --out %s`.\n\n", preset, id, preset, out)
	runErr := rec.run(r)
	if runErr != nil {
		fmt.Fprintf(&r.report, "\n**Stopped: %v**\n", runErr)
	}
	r.finish()
	if err := writeFileAtomic(filepath.Join(out, "report.md"), r.report.Bytes()); err != nil {
		return err
	}
	return runErr
}

// Printf adds to the report.
func (r *Reproduction) Printf(format string, args ...any) { fmt.Fprintf(&r.report, format, args...) }

// Train trains rc into out/runs/name, or reuses the run there: one with
// the same configuration is resumed (a finished run is left as it is, so
// a re-run only evaluates); one with another configuration is an error
// naming both, never replaced.
func (r *Reproduction) Train(name string, rc RunConfig) (string, error) {
	return r.TrainEnsemble(name, rc, 1)
}

// TrainEnsemble is Train for an ensemble of k members (TrainEnsemble):
// the run out/runs/name is member 0 and its configuration decides reuse;
// a reused run gets the members it lacks and keeps those it has beyond k.
func (r *Reproduction) TrainEnsemble(name string, rc RunConfig, k int) (string, error) {
	run := filepath.Join(r.Out, "runs", name)
	if err := rc.Resolve(); err != nil {
		return "", fmt.Errorf("run %s: %w", name, err)
	}
	resume := false
	if runfile.Exists(run) {
		old, err := ReadRunConfig(run)
		if err != nil {
			return "", fmt.Errorf("run %s: %w", name, err)
		}
		a, _ := runfile.Encode(old.Spec, old.Train)
		b, _ := runfile.Encode(rc.Spec, rc.Train)
		if !bytes.Equal(a, b) {
			return "", fmt.Errorf("run %s holds a run of another configuration (%s); move it away or use another --out", run, filepath.Join(run, runfile.FileName))
		}
		resume = true
		rc = old
		// a run with more members than asked (the scores recipe's,
		// reused by table1 in the same --out) keeps them all
		if e, err := ReadEnsemble(run); err != nil {
			return "", fmt.Errorf("run %s: %w", name, err)
		} else if e != nil && e.K > k {
			k = e.K
		}
	}
	cmd := trainCommand(rc, run)
	if k > 1 {
		cmd = strings.Replace(cmd, "   # model_config", fmt.Sprintf(" --ensemble %d   # model_config", k), 1)
	}
	r.commands = append(r.commands, cmd)
	r.noteSources(rc, rc.Data.Name)
	what := ""
	if k > 1 {
		what = fmt.Sprintf(", an ensemble of %d", k)
	}
	fmt.Fprintf(r.Progress, "reproduce: training %s (%s %s on %s%s)\n", name, rc.Model, rc.Preset, rc.Data.Name, what)
	res, err := TrainEnsemble(r.Ctx, rc, run, k, TrainOptions{Resume: resume, Progress: r.Progress})
	if err != nil {
		return "", fmt.Errorf("run %s: %w", name, err)
	}
	finished := true
	for _, x := range res {
		finished = finished && x.AlreadyFinished
	}
	if finished {
		fmt.Fprintf(r.Progress, "reproduce: %s already trained, reused\n", name)
		r.reused = append(r.reused, name)
	}
	return run, nil
}

// Eval evaluates a run (EvalOptions as flowood eval takes them).
func (r *Reproduction) Eval(run string, opt EvalOptions) (*Metrics, error) {
	rc, err := ReadRunConfig(run)
	if err != nil {
		return nil, err
	}
	for _, o := range opt.OOD {
		r.noteSources(rc, o)
	}
	cmd := fmt.Sprintf("flowood eval %s --ood %s", run, strings.Join(opt.OOD, ","))
	if len(opt.Scores) > 0 {
		cmd += " --score " + strings.Join(opt.Scores, ",")
	}
	if opt.Limit > 0 {
		cmd += fmt.Sprintf(" --limit %d", opt.Limit)
	}
	if opt.Background != "" {
		cmd += " --background " + opt.Background
	}
	if opt.General != "" {
		cmd += " --general " + opt.General
	}
	if len(opt.Ensemble) > 0 {
		cmd += " --ensemble " + strings.Join(opt.Ensemble, ",")
	}
	if opt.BatchTest > 0 {
		cmd += fmt.Sprintf(" --batch-test %d", opt.BatchTest)
	}
	if opt.MatchCompression {
		cmd += " --match-compression"
	}
	if len(opt.ResizeVariants) > 0 {
		cmd += " --resize-variants " + strings.Join(opt.ResizeVariants, ",")
	}
	r.commands = append(r.commands, cmd)
	opt.Progress = r.Progress
	return Evaluate(r.Ctx, run, opt)
}

// Available reports whether the given split of dataset name can be read
// here (locally, or embedded for embedded runs) and, when not, an error
// naming what is missing and where to put it. An empty split is the one
// flowood eval scores an OOD set on.
func (r *Reproduction) Available(name, split string, embedded bool) error {
	if embedded {
		return nil
	}
	if split == "" {
		split = oodSplit(name, false)
	}
	st := data.Status(name, split, data.Options{}, false)
	switch st.Where {
	case data.WhereNotAvailable, data.WhereDownload:
		msg := fmt.Sprintf("%s %s is not in the cache or the mirror", name, split)
		if st.Err != nil {
			msg += fmt.Sprintf(" (%v)", st.Err)
		}
		if n := data.Note(name); n != "" {
			msg += "; " + n
		}
		return errors.New(msg + "; `flowood data show " + name + "` says which files to put in FLOWOOD_MIRROR")
	}
	return nil
}

func (r *Reproduction) noteSources(rc RunConfig, name string) {
	if rc.Data.Embedded {
		r.sources[name+"\tembedded subset (compiled into the binary)"] = true
		return
	}
	for _, split := range []string{"train", "test", "val"} {
		st := data.Status(name, split, data.Options{}, false)
		for _, p := range st.Paths {
			r.sources[name+"\t"+p] = true
		}
	}
}

// finish appends the commands, data sources, wall time and machine.
func (r *Reproduction) finish() {
	r.Printf("\n## How this was made\n\n")
	if len(r.commands) == 0 {
		r.Printf("No model was trained or evaluated (see above for what is missing).\n")
	} else {
		r.Printf("Equivalent commands (each run's full configuration is its `runs/*/config.json`):\n\n```\n")
		seen := map[string]bool{}
		for _, c := range r.commands {
			if !seen[c] {
				r.Printf("%s\n", c)
				seen[c] = true
			}
		}
		r.Printf("```\n\n")
	}
	var srcs []string
	for s := range r.sources {
		srcs = append(srcs, s)
	}
	sort.Strings(srcs)
	if len(srcs) > 0 {
		r.Printf("Data files (SHA-256):\n\n")
	}
	for _, s := range srcs {
		name, path, _ := strings.Cut(s, "\t")
		if strings.HasPrefix(path, "embedded") {
			r.Printf("- %s: %s\n", name, path)
			continue
		}
		r.Printf("- %s: `%s` %s\n", name, path, fileSHA256(path))
	}
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, cpu, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	if len(r.reused) > 0 {
		r.Printf("\nRuns reused, already trained before this invocation (the wall time below leaves out their training): %s.\n", strings.Join(r.reused, ", "))
	}
	r.Printf("\nWall time %s on %s, %d cores (GOMAXPROCS %d), %s %s/%s, finished %s.\n",
		time.Since(r.start).Round(time.Second), cpu, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339))
}

func fileSHA256(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return hex.EncodeToString(h.Sum(nil))
}

// trainCommand is the flowood train command line equivalent to rc.
func trainCommand(rc RunConfig, run string) string {
	c := fmt.Sprintf("flowood train --model %s --preset %s --data %s --out %s --seed %d", rc.Model, rc.Preset, rc.Data.Name, run, rc.Train.Seed)
	if rc.Data.Embedded {
		c += " --embedded"
	}
	if rc.Data.TrainLimit > 0 {
		c += fmt.Sprintf(" --train-limit %d", rc.Data.TrainLimit)
	}
	c += fmt.Sprintf(" --epochs %d", rc.Train.Epochs)
	if rc.Train.MaxSteps > 0 {
		c += fmt.Sprintf(" --max-steps %d", rc.Train.MaxSteps)
	}
	if rc.Data.BackgroundNoise > 0 {
		c += fmt.Sprintf(" --background-noise %g", rc.Data.BackgroundNoise)
	}
	b, _ := json.Marshal(rc.ModelConfig)
	return c + "   # model_config " + string(b)
}
