package viz

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// HistogramWidth and HistogramHeight are the pixel dimensions of the PNG
// written by Histogram.
const (
	HistogramWidth  = 800
	HistogramHeight = 500
)

// histogramAlpha is the opacity of histogram fills, low enough that
// overlapping series remain visible through each other.
const histogramAlpha = 0.45

// Series is one named set of values, such as the log-likelihoods of one
// data split, drawn as one histogram by Histogram.
type Series struct {
	// Name labels the series in the legend.
	Name string
	// Values are the data; NaN values are ignored.
	Values []float64
}

// Histogram writes to path a PNG (HistogramWidth by HistogramHeight
// pixels) of overlaid, semi-transparent density histograms, one per
// series, each in a distinct colour and named in a legend. This is the
// figure that compares log-likelihoods of training, test and OOD data.
//
// All series share common bin edges: bins equal-width bins spanning the
// 0.5th to 99.5th percentile of the pooled finite values of all series,
// so that a few extreme values (such as very negative log-likelihoods) do
// not squash the plot. Values outside that range, including -Inf and +Inf,
// are clamped into the first or last bin, which therefore also count the
// tails. NaN values are ignored. Each histogram is normalised to unit
// area over the plotted range: a bin's height is its count divided by the
// series' number of non-NaN values and the bin width. If every pooled
// value is equal, the range is widened to that value ± 0.5.
//
// Histogram returns an error, naming path, if series is empty, if bins is
// less than 1, if a series has no non-NaN values, if no series has a
// finite value or if the file cannot be written.
func Histogram(path string, title, xlabel string, series []Series, bins int) error {
	lo, width, weights, err := densityBins(series, bins)
	if err != nil {
		return fmt.Errorf("viz: histogram %s: %w", path, err)
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "density"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	// Leave headroom above the tallest bar for the legend, one line per
	// series, so that the legend does not hide the bars.
	var top float64
	for _, w := range weights {
		top = max(top, slices.Max(w))
	}
	p.Y.Min = 0
	p.Y.Max = top * (1.05 + 0.06*float64(len(series)))
	for i, s := range series {
		c := seriesColor(i)
		fill := c
		fill.A = uint8(math.Round(histogramAlpha * 255))
		h := &plotter.Histogram{
			Bins:      make([]plotter.HistogramBin, bins),
			Width:     width,
			FillColor: fill,
			LineStyle: draw.LineStyle{Color: c, Width: vg.Points(0.5)},
		}
		for b := range h.Bins {
			h.Bins[b] = plotter.HistogramBin{
				Min:    lo + float64(b)*width,
				Max:    lo + float64(b+1)*width,
				Weight: weights[i][b],
			}
		}
		p.Add(h)
		p.Legend.Add(s.Name, h)
	}
	img := render(p, HistogramWidth, HistogramHeight)
	if err := writePNG(path, img); err != nil {
		return fmt.Errorf("viz: writing histogram %s: %w", path, err)
	}
	return nil
}

// densityBins computes the common bin edges lo + k*width, k = 0..bins, and
// the density of each series in each bin as documented on Histogram.
func densityBins(series []Series, bins int) (lo, width float64, weights [][]float64, err error) {
	if len(series) == 0 {
		return 0, 0, nil, fmt.Errorf("no series")
	}
	if bins < 1 {
		return 0, 0, nil, fmt.Errorf("bins = %d, need at least 1", bins)
	}
	var pooled []float64
	for i, s := range series {
		n := 0
		for _, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			n++
			if !math.IsInf(v, 0) {
				pooled = append(pooled, v)
			}
		}
		if n == 0 {
			return 0, 0, nil, fmt.Errorf("series %d (%q) has no non-NaN values", i, s.Name)
		}
	}
	if len(pooled) == 0 {
		return 0, 0, nil, fmt.Errorf("no finite values in any series")
	}
	slices.Sort(pooled)
	lo = percentile(pooled, 0.005)
	hi := percentile(pooled, 0.995)
	if !(hi > lo) {
		lo, hi = lo-0.5, hi+0.5
	}
	width = (hi - lo) / float64(bins)
	weights = make([][]float64, len(series))
	for i, s := range series {
		w := make([]float64, bins)
		n := 0
		for _, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			n++
			w[binIndex(v, lo, hi, width, bins)]++
		}
		scale := 1 / (float64(n) * width)
		for b := range w {
			w[b] *= scale
		}
		weights[i] = w
	}
	return lo, width, weights, nil
}

// binIndex returns the bin of the non-NaN value v among bins bins of the
// given width starting at lo and ending at hi, clamping values outside
// [lo, hi) into the first or last bin.
func binIndex(v, lo, hi, width float64, bins int) int {
	if v <= lo {
		return 0
	}
	if v >= hi {
		return bins - 1
	}
	return min(int((v-lo)/width), bins-1)
}

// percentile returns the q-quantile (0 <= q <= 1) of the ascending sorted,
// non-empty slice s, interpolating linearly between neighbouring order
// statistics.
func percentile(s []float64, q float64) float64 {
	pos := q * float64(len(s)-1)
	i := int(math.Floor(pos))
	if i >= len(s)-1 {
		return s[len(s)-1]
	}
	f := pos - float64(i)
	if f == 0 {
		return s[i]
	}
	return s[i] + f*(s[i+1]-s[i])
}
