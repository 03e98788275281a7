package data

import (
	"fmt"
	"math"
)

// Tabular is a table of N rows of D real-valued features, stored row-major,
// with an optional class label per row.
type Tabular struct {
	// Name is the data set's registry name, such as "miniboone"; empty for
	// tables that did not come from the registry.
	Name string
	// Split is "train", "val" or "test" for registry data sets.
	Split string

	N, D int

	// X holds N*D values; row i is X[i*D : (i+1)*D].
	X []float64
	// Labels holds one class label per row, or is nil when there are none.
	Labels []uint8
}

// Validate reports whether the dimensions are non-negative and agree with
// the lengths of X and Labels, and whether every value is finite.
func (t *Tabular) Validate() error {
	if t.N < 0 || t.D < 0 {
		return fmt.Errorf("invalid table shape %dx%d", t.N, t.D)
	}
	if t.D > 0 && t.N > math.MaxInt/t.D {
		return fmt.Errorf("invalid table shape %dx%d: too large", t.N, t.D)
	}
	if len(t.X) != t.N*t.D {
		return fmt.Errorf("table shape %dx%d needs %d values, have %d", t.N, t.D, t.N*t.D, len(t.X))
	}
	if t.Labels != nil && len(t.Labels) != t.N {
		return fmt.Errorf("table has %d rows but %d labels", t.N, len(t.Labels))
	}
	for k, v := range t.X {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("table value at row %d, column %d is %v", k/t.D, k%t.D, v)
		}
	}
	return nil
}

// Row returns row i, D values. The slice shares storage with t.X. Row panics
// if i is out of range.
func (t *Tabular) Row(i int) []float64 {
	if i < 0 || i >= t.N {
		panic(fmt.Sprintf("data: row index %d out of range [0,%d)", i, t.N))
	}
	return t.X[i*t.D : (i+1)*t.D : (i+1)*t.D]
}

// Head returns the first n rows, or all of them when n exceeds N; a negative
// n counts as zero. The result shares storage with t; its slices are capped
// so that appending to them cannot overwrite t's data.
func (t *Tabular) Head(n int) *Tabular {
	n = max(0, min(n, t.N))
	out := &Tabular{Name: t.Name, Split: t.Split, N: n, D: t.D}
	end := n * t.D
	out.X = t.X[:end:end]
	if t.Labels != nil {
		out.Labels = t.Labels[:n:n]
	}
	return out
}

// Subset returns a new table holding copies of the rows (and labels) at the
// given indices, in that order; indices may repeat. Subset panics if an
// index is out of range.
func (t *Tabular) Subset(idx []int) *Tabular {
	out := &Tabular{Name: t.Name, Split: t.Split, N: len(idx), D: t.D}
	out.X = make([]float64, len(idx)*t.D)
	if t.Labels != nil {
		out.Labels = make([]uint8, len(idx))
	}
	for j, i := range idx {
		copy(out.X[j*t.D:], t.Row(i))
		if t.Labels != nil {
			out.Labels[j] = t.Labels[i]
		}
	}
	return out
}

// Columns returns a new table holding copies of the given feature columns,
// in that order, and t's labels. Columns panics if a column is out of range.
func (t *Tabular) Columns(cols []int) *Tabular {
	for _, c := range cols {
		if c < 0 || c >= t.D {
			panic(fmt.Sprintf("data: column index %d out of range [0,%d)", c, t.D))
		}
	}
	out := &Tabular{Name: t.Name, Split: t.Split, N: t.N, D: len(cols)}
	out.X = make([]float64, t.N*len(cols))
	for i := range t.N {
		row := t.X[i*t.D:]
		dst := out.X[i*len(cols):]
		for j, c := range cols {
			dst[j] = row[c]
		}
	}
	if t.Labels != nil {
		out.Labels = append([]uint8(nil), t.Labels...)
	}
	return out
}
