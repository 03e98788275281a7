package serve

import (
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/runfile"
)

//go:embed assets
var assets embed.FS

// RunSummary is what GET /api/run returns: the dashboard's data.
type RunSummary struct {
	Run        string  `json:"run"`
	Model      string  `json:"model"`
	Checkpoint string  `json:"checkpoint"`
	Threshold  float64 `json:"threshold"`
	Calibrated bool    `json:"calibrated"`
	// Scores, Thresholds and Primary are the detector's: the scores
	// each image gets, their thresholds, the score behind ood.
	Scores     []string           `json:"scores"`
	Thresholds map[string]float64 `json:"thresholds"`
	Primary    string             `json:"primary"`
	Shape      [3]int             `json:"shape"` // height, width, channels
	// Config is RUN/config.json as written.
	Config json.RawMessage `json:"config"`
	// Metrics is RUN/eval/metrics.json, null before flowood eval ran.
	Metrics json.RawMessage `json:"metrics"`
	// TrainLog is RUN/train-log.csv: its header and rows (NaN as null).
	TrainLog *Table `json:"train_log"`
	// Histogram bins every scored set's per-dimension score
	// (RUN/eval/scores.csv), over the whole range of the values.
	Histogram *Histogram `json:"histogram"`
	// ROC holds a curve per OOD set against the in-distribution test set.
	ROC []ROCCurve `json:"roc"`
	// Figures lists the PNG files of the run, served under /run/.
	Figures []string `json:"figures"`
}

// Table is a CSV file's header and numeric rows.
type Table struct {
	Columns []string     `json:"columns"`
	Rows    [][]*float64 `json:"rows"`
}

// Histogram is shared bin edges and one count vector per scored set.
type Histogram struct {
	Unit   string            `json:"unit"`
	Edges  []float64         `json:"edges"`
	Series []HistogramSeries `json:"series"`
}

// HistogramSeries is one set's counts.
type HistogramSeries struct {
	Name   string `json:"name"`
	N      int    `json:"n"`
	Counts []int  `json:"counts"`
}

// ROCCurve is one OOD set's ROC curve (in-distribution positive), at most
// rocPoints points.
type ROCCurve struct {
	OOD   string    `json:"ood"`
	AUROC float64   `json:"auroc"`
	FPR   []float64 `json:"fpr"`
	TPR   []float64 `json:"tpr"`
}

const (
	histBins  = 40
	rocPoints = 200
)

func (s *Server) apiRun(w http.ResponseWriter, r *http.Request) {
	h, wd, c := s.det.Shape()
	sum := RunSummary{Run: filepath.Base(s.run), Model: s.det.Model(), Checkpoint: s.det.Checkpoint(),
		Threshold: s.det.Threshold(), Calibrated: s.det.Calibrated(), Scores: s.det.Scores(), Thresholds: s.det.Thresholds(),
		Primary: s.det.Primary(), Shape: [3]int{h, wd, c}}
	var err error
	if sum.Config, err = readJSON(filepath.Join(s.run, "config.json")); err != nil {
		s.fail(w, r, err)
		return
	}
	if sum.Metrics, err = readJSON(filepath.Join(s.run, "eval", "metrics.json")); err != nil {
		s.fail(w, r, err)
		return
	}
	if sum.TrainLog, err = readTable(filepath.Join(s.run, "train-log.csv")); err != nil {
		s.fail(w, r, err)
		return
	}
	if sum.Histogram, sum.ROC, err = s.scoreViews(sum.Metrics); err != nil {
		s.fail(w, r, err)
		return
	}
	sum.Figures = s.figures()
	writeJSON(w, http.StatusOK, sum)
}

// readJSON returns the file's JSON, or null when it does not exist.
func readJSON(p string) (json.RawMessage, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return json.RawMessage("null"), nil
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("%s is not valid JSON", p)
	}
	return b, nil
}

// readTable reads a numeric CSV file with a header; nil when it does not
// exist. Cells that do not parse (or are NaN) become null.
func readTable(p string) (*Table, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rd := csv.NewReader(f)
	rd.FieldsPerRecord = -1
	head, err := rd.Read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	t := &Table{Columns: head}
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			return t, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		row := make([]*float64, len(rec))
		for i, v := range rec {
			if x, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(x) && !math.IsInf(x, 0) {
				row[i] = &x
			}
		}
		t.Rows = append(t.Rows, row)
	}
}

// scoreViews reads RUN/eval/scores.csv (dataset, split, index,
// log_likelihood, per-dimension score) and returns the histogram of the
// per-dimension score of every set, and the ROC curve of every OOD set
// against the in-distribution set named in metrics.json ("in").
func (s *Server) scoreViews(metrics json.RawMessage) (*Histogram, []ROCCurve, error) {
	p := filepath.Join(s.run, "eval", "scores.csv")
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rd := csv.NewReader(f)
	head, err := rd.Read()
	if err != nil || len(head) < 5 {
		return nil, nil, fmt.Errorf("reading %s: want a header dataset,split,index,log_likelihood,<per-dim score> (%v)", p, err)
	}
	type set struct{ ll, perDim []float64 }
	sets := map[string]*set{}
	var order []string
	for {
		rec, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", p, err)
		}
		ll, err1 := strconv.ParseFloat(rec[3], 64)
		pd, err2 := strconv.ParseFloat(rec[4], 64)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("reading %s: line %v: not numbers", p, rec)
		}
		name := rec[0] + " " + rec[1]
		st := sets[name]
		if st == nil {
			st = &set{}
			sets[name] = st
			order = append(order, name)
		}
		st.ll, st.perDim = append(st.ll, ll), append(st.perDim, pd)
	}
	if len(order) == 0 {
		return nil, nil, nil
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, st := range sets {
		for _, v := range st.perDim {
			if !math.IsInf(v, 0) && !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi <= lo {
		hi = lo + 1
	}
	hist := &Histogram{Unit: head[4]}
	for i := 0; i <= histBins; i++ {
		hist.Edges = append(hist.Edges, lo+(hi-lo)*float64(i)/histBins)
	}
	for _, name := range order {
		counts := make([]int, histBins)
		for _, v := range sets[name].perDim {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			b := min(int((v-lo)/(hi-lo)*histBins), histBins-1)
			counts[b]++
		}
		hist.Series = append(hist.Series, HistogramSeries{Name: name, N: len(sets[name].perDim), Counts: counts})
	}

	var m struct {
		In struct {
			Dataset, Split string
		}
	}
	if err := json.Unmarshal(metrics, &m); err != nil || m.In.Dataset == "" {
		return hist, nil, nil
	}
	in := sets[m.In.Dataset+" "+m.In.Split]
	if in == nil {
		return hist, nil, nil
	}
	var rocs []ROCCurve
	for _, name := range order {
		st := sets[name]
		if st == in || name == m.In.Dataset+" train" {
			continue
		}
		fpr, tpr, _ := ood.ROC(in.ll, st.ll)
		c := ROCCurve{OOD: name, AUROC: ood.AUROC(in.ll, st.ll)}
		step := max(1, len(fpr)/rocPoints)
		for i := 0; i < len(fpr); i += step {
			c.FPR, c.TPR = append(c.FPR, fpr[i]), append(c.TPR, tpr[i])
		}
		if n := len(fpr); n > 0 && (n-1)%step != 0 {
			c.FPR, c.TPR = append(c.FPR, fpr[n-1]), append(c.TPR, tpr[n-1])
		}
		rocs = append(rocs, c)
	}
	return hist, rocs, nil
}

// figures lists the PNG files directly under RUN and RUN/eval, and
// anywhere under RUN/viz, as slash-separated paths relative to RUN.
func (s *Server) figures() []string {
	var out []string
	for _, dir := range []string{".", "eval"} {
		ms, _ := filepath.Glob(filepath.Join(s.run, dir, "*.png"))
		for _, m := range ms {
			rel, err := filepath.Rel(s.run, m)
			if err == nil {
				out = append(out, filepath.ToSlash(rel))
			}
		}
	}
	filepath.WalkDir(filepath.Join(s.run, "viz"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && path.Ext(p) == ".png" {
			if rel, err := filepath.Rel(s.run, p); err == nil {
				out = append(out, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// runFile serves one of the run's figures: only a path figures lists, so
// nothing else of the file system is reachable.
func (s *Server) runFile(w http.ResponseWriter, r *http.Request) {
	want := r.PathValue("file")
	for _, f := range s.figures() {
		if f == want {
			w.Header().Set("Content-Type", "image/png")
			http.ServeFile(w, r, filepath.Join(s.run, filepath.FromSlash(f)))
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no figure %q in the run", want))
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'")
	w.Write(b)
}

func (s *Server) static(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := assets.ReadFile("assets/" + name)
	if err != nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no asset %q", name))
		return
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	}
	w.Write(b)
}

// inDistribution returns, per score column of RUN/eval/scores.csv
// (log_likelihood as loglik), the scores of the set the run's thresholds
// were calibrated on (thresholds.json, or threshold.json); nil when the
// run has not been evaluated or the files do not say.
func inDistribution(run string) map[string][]float64 {
	var dataset, split string
	if c, err := runfile.ReadCalibration(run); err == nil {
		dataset, split = c.Dataset, c.Split
	} else if t, err := runfile.ReadThreshold(run); err == nil {
		dataset, split = t.Dataset, t.Split
	}
	f, err := os.Open(filepath.Join(run, "eval", "scores.csv"))
	if dataset == "" || err != nil {
		return nil
	}
	defer f.Close()
	rd := csv.NewReader(f)
	head, err := rd.Read()
	if err != nil || len(head) < 5 {
		return nil
	}
	out := map[string][]float64{}
	for {
		rec, err := rd.Read()
		if err != nil {
			return out
		}
		if rec[0] != dataset || rec[1] != split {
			continue
		}
		for c := 3; c < len(rec); c++ {
			name := head[c]
			switch {
			case c == 3:
				name = "loglik"
			case c == 4:
				continue // the per-dimension loss
			}
			if v, err := strconv.ParseFloat(rec[c], 64); err == nil {
				out[name] = append(out[name], v)
			}
		}
	}
}
