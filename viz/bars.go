package viz

import (
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// BarSeries is one group member of a grouped bar chart: a value per
// category.
type BarSeries struct {
	Name   string
	Values []float64
}

// Bars writes to path a PNG of a grouped bar chart: for each category
// (x axis, labels rotated), one bar per series in the series' colour.
// It returns an error naming path when a series has another number of
// values than there are categories or a NaN value.
func Bars(path, title, ylabel string, categories []string, series []BarSeries) error {
	if len(categories) == 0 || len(series) == 0 {
		return fmt.Errorf("viz: bars %s: no categories or no series", path)
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Add(plotter.NewGrid())
	w := vg.Points(math.Max(2, 60/float64(len(series)*len(categories))*4))
	lo, hi := 0.0, 0.0
	for _, s := range series {
		for _, x := range s.Values {
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	// room above the bars for the legend, below for negative bars
	span := math.Max(hi-lo, 1e-9)
	p.Y.Min, p.Y.Max = lo-0.05*span*b2f(lo < 0), hi+0.08*span*float64(len(series)+1)
	for i, s := range series {
		if len(s.Values) != len(categories) {
			return fmt.Errorf("viz: bars %s: series %q has %d values for %d categories", path, s.Name, len(s.Values), len(categories))
		}
		v := make(plotter.Values, len(s.Values))
		for k, x := range s.Values {
			if math.IsNaN(x) {
				return fmt.Errorf("viz: bars %s: series %q: value %d is NaN", path, s.Name, k)
			}
			v[k] = x
		}
		b, err := plotter.NewBarChart(v, w)
		if err != nil {
			return fmt.Errorf("viz: bars %s: %w", path, err)
		}
		b.Color = seriesColor(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(series)-1)/2)
		p.Add(b)
		p.Legend.Add(s.Name, b)
	}
	p.Legend.Top = true
	p.NominalX(categories...)
	p.X.Tick.Label.Rotation = math.Pi / 2.5
	p.X.Tick.Label.XAlign = -0.9
	width := max(600, 14*len(categories)*len(series)+150)
	if err := writePNG(path, render(p, width, 500)); err != nil {
		return fmt.Errorf("viz: writing bars %s: %w", path, err)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
