package data

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
)

const (
	// DefaultMaxCSVRows is the number of data rows ReadCSV accepts when
	// CSVOptions.MaxRows is zero: more than the 7 million rows of HEPMASS's
	// largest file.
	DefaultMaxCSVRows = 1 << 24
	// maxCSVLine bounds the length of one line of a CSV file.
	maxCSVLine = 1 << 20
)

// CSVOptions says how ReadCSV splits and interprets a text table.
type CSVOptions struct {
	// Whitespace separates fields by runs of spaces and tabs, ignoring
	// leading and trailing blanks, instead of by Comma.
	Whitespace bool
	// Comma is the field separator when Whitespace is false; zero means
	// ','. Blanks around fields are ignored.
	Comma rune
	// Header says that the first non-blank line holds column names; it is
	// skipped.
	Header bool
	// Label says that column LabelColumn (counted from 0) holds each row's
	// class label, an integer from 0 to 255 (written as "1" or "1.0"); that
	// column is not one of the features.
	Label       bool
	LabelColumn int
	// MaxRows bounds the number of data rows; zero means DefaultMaxCSVRows.
	MaxRows int
}

// ReadCSV reads a table of real numbers, one row per line, from r. Blank
// lines are skipped; every other line must have the same number of fields.
// A cell that is not a number, or is NaN or infinite, is an error naming
// its line and column (both counted from 1), as are a wrong number of
// fields, a bad label, more than MaxRows rows and lines longer than 1 MiB.
// name is used in error messages; the result's Name and Split are empty.
func ReadCSV(r io.Reader, name string, opts CSVOptions) (*Tabular, error) {
	t, err := readCSV(&lineReader{br: bufio.NewReaderSize(r, 1<<16)}, opts)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return t, nil
}

// ReadCSVFile reads the file at path with ReadCSV.
func ReadCSVFile(path string, opts CSVOptions) (*Tabular, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading csv file: %w", err)
	}
	defer f.Close()
	return ReadCSV(f, path, opts)
}

// lineReader returns the lines of a text stream with their numbers.
type lineReader struct {
	br   *bufio.Reader
	line int
}

// next returns the next line without its line ending, or io.EOF.
func (lr *lineReader) next() (string, error) {
	var buf []byte
	for {
		chunk, err := lr.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxCSVLine {
			return "", fmt.Errorf("line %d is longer than %d bytes", lr.line+1, maxCSVLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF && len(buf) > 0 {
			err = nil
		}
		if err != nil {
			return "", err
		}
		lr.line++
		buf = bytes.TrimRight(buf, "\r\n")
		return string(buf), nil
	}
}

func readCSV(lr *lineReader, opts CSVOptions) (*Tabular, error) {
	comma := opts.Comma
	if comma == 0 {
		comma = ','
	}
	maxRows := opts.MaxRows
	if maxRows <= 0 {
		maxRows = DefaultMaxCSVRows
	}
	if opts.Label && opts.LabelColumn < 0 {
		return nil, fmt.Errorf("label column %d is negative", opts.LabelColumn)
	}
	t := &Tabular{D: -1}
	if opts.Label {
		t.Labels = []uint8{}
	}
	header := opts.Header
	var fields []string
	for {
		line, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if opts.Whitespace {
			fields = strings.Fields(line)
		} else {
			fields = strings.Split(line, string(comma))
		}
		if header {
			header = false
			continue
		}
		if t.D < 0 {
			t.D = len(fields)
			if opts.Label {
				if opts.LabelColumn >= len(fields) {
					return nil, fmt.Errorf("line %d has %d columns, no label column %d", lr.line, len(fields), opts.LabelColumn+1)
				}
				t.D--
			}
		}
		want := t.D
		if opts.Label {
			want++
		}
		if len(fields) != want {
			return nil, fmt.Errorf("line %d has %d columns, want %d", lr.line, len(fields), want)
		}
		if t.N == maxRows {
			return nil, fmt.Errorf("more than %d rows (line %d)", maxRows, lr.line)
		}
		for j, f := range fields {
			f = strings.TrimSpace(f)
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				if len(f) > 40 {
					f = f[:40] + "..."
				}
				return nil, fmt.Errorf("line %d, column %d: %q is not a number", lr.line, j+1, f)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("line %d, column %d: value %q is not finite", lr.line, j+1, f)
			}
			if opts.Label && j == opts.LabelColumn {
				if v != math.Trunc(v) || v < 0 || v > 255 {
					return nil, fmt.Errorf("line %d, column %d: label %q is not an integer from 0 to 255", lr.line, j+1, f)
				}
				t.Labels = append(t.Labels, uint8(v))
				continue
			}
			t.X = append(t.X, v)
		}
		t.N++
	}
	if t.D < 0 {
		t.D = 0
	}
	return t, nil
}

// ReadMiniBooNERaw reads the UCI MiniBooNE particle identification file
// (MiniBooNE_PID.txt): a first line "nsignal nbackground", then
// nsignal+nbackground rows of 50 whitespace-separated numbers, the signal
// events first. Signal rows get label 1 and background rows label 0. The
// table is returned as is; in particular the rows of -999 placeholder
// values that the MAF preprocessing removes (column 0 below -100) are kept.
// name is used in error messages.
func ReadMiniBooNERaw(r io.Reader, name string) (*Tabular, error) {
	t, err := readMiniBooNE(&lineReader{br: bufio.NewReaderSize(r, 1<<16)})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return t, nil
}

func readMiniBooNE(lr *lineReader) (*Tabular, error) {
	first, err := lr.next()
	if err == io.EOF {
		return nil, fmt.Errorf("empty MiniBooNE file, want a first line \"nsignal nbackground\"")
	}
	if err != nil {
		return nil, err
	}
	counts := strings.Fields(first)
	if len(counts) != 2 {
		return nil, fmt.Errorf("line 1: want \"nsignal nbackground\", have %q", abbreviate(first, 80))
	}
	var n [2]int
	for i, s := range counts {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > DefaultMaxCSVRows {
			return nil, fmt.Errorf("line 1: bad event count %q", abbreviate(s, 40))
		}
		n[i] = v
	}
	total := n[0] + n[1]
	t, err := readCSV(lr, CSVOptions{Whitespace: true, MaxRows: total})
	if err != nil {
		return nil, err
	}
	if t.N != total {
		return nil, fmt.Errorf("first line promises %d signal and %d background events, file has %d rows", n[0], n[1], t.N)
	}
	if t.N > 0 && t.D != 50 {
		return nil, fmt.Errorf("rows have %d columns, want 50", t.D)
	}
	t.D = 50
	t.Labels = make([]uint8, total)
	for i := range n[0] {
		t.Labels[i] = 1
	}
	return t, nil
}

// ReadMiniBooNERawFile reads the file at path with ReadMiniBooNERaw.
func ReadMiniBooNERawFile(path string) (*Tabular, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading MiniBooNE file: %w", err)
	}
	defer f.Close()
	return ReadMiniBooNERaw(f, path)
}

// MAFMaxRepeats is the threshold of the MAF preprocessing's feature rule.
const MAFMaxRepeats = 5

// RepeatedFeatures returns, in increasing order, the feature columns of t
// that the MAF preprocessing of Papamakarios et al. (2017) removes as
// having "too many re-occurring real values": a column is removed when its
// smallest value occurs in more than maxCount rows. (The MAF code sorts a
// column's value counts by value and tests the first, i.e. the count of the
// minimum, not of the most frequent value; this rule reproduces that code
// exactly. Discrete HEPMASS features take their minimum in many rows, so
// they are removed, while a continuous feature whose minimum is unique is
// kept even if some other value repeats.)
func RepeatedFeatures(t *Tabular, maxCount int) []int {
	var drop []int
	for j := range t.D {
		minV, count := math.Inf(1), 0
		for i := range t.N {
			switch v := t.X[i*t.D+j]; {
			case v < minV:
				minV, count = v, 1
			case v == minV:
				count++
			}
		}
		if count > maxCount {
			drop = append(drop, j)
		}
	}
	return drop
}

// HEPMASSFeatureColumns returns the feature columns of a HEPMASS table
// (labels held in Labels, not in X) that the MAF preprocessing keeps: all
// but RepeatedFeatures(t, MAFMaxRepeats). The rule is computed on a
// training split and the same columns are kept in the test split: pass the
// training table here and the result to Columns of each split.
//
// Which rows the rule sees matters. MAF computes it on the signal class
// only (21 features remain, as in the MAF paper). The paper reproduced
// here computes it on the training split with both classes (its code,
// github.com/PolinaKirichenko/flows_ood, flow_ssl/data/hepmass.py), where
// more columns have a repeated minimum: App. O.3 reports 15 features.
// That count could not be checked here, for lack of the data. The same
// code also normalises each class by its own training mean and standard
// deviation. The mass column (constant in the "1000" subset) is removed
// by the rule.
func HEPMASSFeatureColumns(t *Tabular) []int {
	drop := RepeatedFeatures(t, MAFMaxRepeats)
	var keep []int
	for j := range t.D {
		if i := sort.SearchInts(drop, j); i < len(drop) && drop[i] == j {
			continue
		}
		keep = append(keep, j)
	}
	return keep
}

// HEPMASSFeatures returns a copy of t without the features that the MAF
// preprocessing drops as having too many repeated values, the rule being
// computed on t itself: t.Columns(HEPMASSFeatureColumns(t)). Labels are
// kept. To treat a test split like its training split, use
// HEPMASSFeatureColumns on the training table.
func HEPMASSFeatures(t *Tabular) *Tabular {
	return t.Columns(HEPMASSFeatureColumns(t))
}
