package experiment

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/flowood/flowood/internal/jsonstrict"
	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/train"
)

// An ensemble of K runs of the same model, data and training, differing
// only in their seed, is what the WAIC score (Choi et al. 2018) averages
// over. TrainEnsemble trains one into a single run folder:
//
//	RUN/                  member 0, seed s: an ordinary run folder
//	RUN/ensemble.json     the members (Ensemble)
//	RUN/ensemble/1/       member 1, seed s+1: a complete run folder
//	...
//	RUN/ensemble/K-1/     member K-1, seed s+K-1
//
// Member 0 is RUN itself, so everything that reads a run (flowood eval,
// sample, serve, detector.Load) reads it unchanged, and the ensemble
// moves and is deleted with it. Each member is a complete run folder with
// its own checkpoints and lock, so it can be evaluated or resumed on its
// own; RUN's lock is held while any member trains. Members share the
// training subset (Data.SubsetSeed) of member 0: they differ only in the
// seed of initialisation, data order and dequantisation.
const (
	// EnsembleFile lists a run's ensemble members.
	EnsembleFile = "ensemble.json"
	// EnsembleDir holds members 1..K-1 in folders named by their index.
	EnsembleDir = "ensemble"
)

// Ensemble is RUN/ensemble.json.
type Ensemble struct {
	Version int `json:"version"`
	// K is the number of members, the run itself (member 0) included.
	K int `json:"k"`
	// Members are members 1..K-1.
	Members []EnsembleMember `json:"members"`
}

// EnsembleMember is one member of an Ensemble other than the run itself.
type EnsembleMember struct {
	// Dir is the member's run folder, relative to the run folder, with
	// slashes ("ensemble/1").
	Dir string `json:"dir"`
	// Seed is the member's training seed (config.json train.seed).
	Seed uint64 `json:"seed"`
}

// newEnsemble returns the ensemble of k members whose member 0 has seed.
func newEnsemble(seed uint64, k int) *Ensemble {
	e := &Ensemble{Version: 1, K: k}
	for i := 1; i < k; i++ {
		e.Members = append(e.Members, EnsembleMember{Dir: path.Join(EnsembleDir, fmt.Sprint(i)), Seed: seed + uint64(i)})
	}
	return e
}

// ReadEnsemble reads RUN/ensemble.json; it returns nil and no error when
// the run has none (a run trained without an ensemble). Errors name the
// file and what is wrong.
func ReadEnsemble(run string) (*Ensemble, error) {
	p := filepath.Join(run, EnsembleFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var e Ensemble
	if err := jsonstrict.Decode(b, &e); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	switch {
	case e.Version != 1:
		return nil, fmt.Errorf("reading %s: version %d (this flowood reads version 1)", p, e.Version)
	case e.K < 2 || len(e.Members) != e.K-1:
		return nil, fmt.Errorf("reading %s: k %d with %d members besides the run: want k >= 2 and k-1 members", p, e.K, len(e.Members))
	}
	for i, m := range e.Members {
		if !filepath.IsLocal(filepath.FromSlash(m.Dir)) || m.Dir == "." {
			return nil, fmt.Errorf("reading %s: member %d: dir %q is not a folder inside the run folder", p, i+1, m.Dir)
		}
	}
	return &e, nil
}

// Runs returns the run folders of members 1..K-1 of the ensemble of run.
func (e *Ensemble) Runs(run string) []string {
	var out []string
	for _, m := range e.Members {
		out = append(out, filepath.Join(run, filepath.FromSlash(m.Dir)))
	}
	return out
}

func (e *Ensemble) write(run string) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(run, EnsembleFile), append(b, '\n'))
}

// ErrEnsembleSize is wrapped by the error TrainEnsemble returns when
// asked to resume an ensemble with fewer members than it has.
var ErrEnsembleSize = errors.New("ensemble size differs")

// TrainEnsemble trains an ensemble of k runs of rc into the run folder
// run (see EnsembleFile for the layout): member i has seed
// rc.Train.Seed+i. It returns each member's result, member 0 first (those
// trained before an error, with the error).
//
// With opt.Resume it continues every member from its latest checkpoint
// (a finished member trains nothing; a member not yet started starts) and
// k = 0 means the run's own size (1 for a run trained without an
// ensemble). A k above the run's size adds the missing members to it (a
// run trained alone becomes member 0 of an ensemble); a k below is an
// error wrapping ErrEnsembleSize, since members are never deleted
// silently. Without Resume, k must be at least 1; k = 1 is Train. With
// opt.Force the old run, its ensemble included, is replaced.
func TrainEnsemble(ctx context.Context, rc RunConfig, run string, k int, opt TrainOptions) (_ []train.Result, err error) {
	if k < 0 || (k == 0 && !opt.Resume) {
		return nil, fmt.Errorf("ensemble of %d members: want at least 1", k)
	}
	if err := rc.Resolve(); err != nil {
		return nil, err
	}
	h, err := holdRun(run)
	if err != nil {
		return nil, err
	}
	defer h.release()
	var have *Ensemble
	size := 1
	if opt.Resume && runfile.Exists(run) {
		if have, err = ReadEnsemble(run); err != nil {
			return nil, err
		}
		if have != nil {
			size = have.K
		}
		if k == 0 {
			k = size
		}
		if k < size {
			return nil, fmt.Errorf("%s holds an ensemble of %d members (%s): %w from the %d asked; resume it with --ensemble %d or without --ensemble",
				run, size, EnsembleFile, ErrEnsembleSize, k, size)
		}
	}
	k = max(k, 1)
	var man *Ensemble
	if k > 1 {
		man = newEnsemble(rc.Train.Seed, k)
		if have != nil {
			copy(man.Members, have.Members) // the recorded members stay where they are
		}
	}
	progress := opt.Progress
	if progress == nil {
		progress = io.Discard
	}
	o := opt
	if k > 1 {
		fmt.Fprintf(progress, "ensemble: member 1 of %d (seed %d) in %s\n", k, rc.Train.Seed, run)
		o.Progress = &linePrefix{w: progress, prefix: fmt.Sprintf("member 1/%d: ", k), start: true}
	}
	start := time.Now()
	res, err := trainHeld(ctx, rc, h, o, man)
	results := []train.Result{res}
	if err != nil {
		return results, err
	}
	var spent time.Duration // on the members that trained
	trained := 0
	if !res.AlreadyFinished {
		spent, trained = time.Since(start), 1
	}
	for i := 1; i < k; i++ {
		m := man.Members[i-1]
		dir := filepath.Join(run, filepath.FromSlash(m.Dir))
		mrc := rc
		mrc.Train.Seed = m.Seed
		resume := opt.Resume && runfile.Exists(dir)
		if resume {
			if err := sameMember(mrc, dir); err != nil {
				return results, fmt.Errorf("ensemble member %d of %d: %w", i+1, k, err)
			}
		}
		eta := "?"
		if trained > 0 {
			eta = (spent / time.Duration(trained) * time.Duration(k-i)).Round(time.Second).String()
		}
		fmt.Fprintf(progress, "ensemble: member %d of %d (seed %d) in %s; ETA of the ensemble %s\n", i+1, k, m.Seed, dir, eta)
		start := time.Now()
		res, err := Train(ctx, mrc, dir, TrainOptions{Resume: resume, Force: opt.Force,
			Progress: &linePrefix{w: progress, prefix: fmt.Sprintf("member %d/%d: ", i+1, k), start: true}})
		if err != nil {
			return results, fmt.Errorf("ensemble member %d of %d (%s): %w", i+1, k, dir, err)
		}
		results = append(results, res)
		if !res.AlreadyFinished {
			spent += time.Since(start)
			trained++
		}
	}
	return results, nil
}

// sameMember returns an error when the run in dir is not the ensemble
// member mrc describes (another model, data or seed); its length and
// learning rate may differ, as in any resumed run.
func sameMember(mrc RunConfig, dir string) error {
	old, err := ReadRunConfig(dir)
	if err != nil {
		return err
	}
	a, err := runfile.Encode(old.Spec, nil)
	if err != nil {
		return err
	}
	b, err := runfile.Encode(mrc.Spec, nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(a, b) || old.Train.Seed != mrc.Train.Seed {
		return fmt.Errorf("%s holds a run of another configuration or seed than the ensemble's member 0 (seed %d here, %d asked); move it away",
			filepath.Join(dir, runfile.FileName), old.Train.Seed, mrc.Train.Seed)
	}
	return nil
}

// linePrefix writes each line to w with prefix in front.
type linePrefix struct {
	w      io.Writer
	prefix string
	start  bool // at the start of a line
}

func (p *linePrefix) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if p.start {
			out = append(out, p.prefix...)
			p.start = false
		}
		out = append(out, c)
		if c == '\n' {
			p.start = true
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
