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
// pooled finite values of all series when their full range is at most
// tailRatio times the range of their 0.5th to 99.5th percentiles;
// otherwise spanning those percentiles, so that a few extreme values
// (such as very negative log-likelihoods) do not squash the plot. Values
// outside the bins, including -Inf and +Inf, are not folded into the edge
// bins (which would show false spikes there): they are counted in two
// tail bars drawn apart from the bins, one bin-gap beyond each end, with
// dashed outlines, labelled "< lo" and "> hi", and each series' legend
// entry says how many of its values lie below and above. NaN values are
// ignored. Each histogram is normalised so that its bins and tail bars
// together have unit area: a bin's height is its count divided by the
// series' number of non-NaN values and the bin width; a tail bar is
// tailBins bins wide. If every pooled value is equal, the range is
// widened to that value ± 0.5.
//
// Histogram returns an error, naming path, if series is empty, if bins is
// less than 1, if a series has no non-NaN values, if no series has a
// finite value or if the file cannot be written.
func Histogram(path string, title, xlabel string, series []Series, bins int) error {
	h, err := densityBins(series, bins)
	if err != nil {
		return fmt.Errorf("viz: histogram %s: %w", path, err)
	}
	lo, width, weights := h.lo, h.width, h.weights
	hi := lo + float64(bins)*width
	tails := h.below > 0 || h.above > 0
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = "density"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	// Leave headroom above the tallest bar for the legend, one line per
	// series, so that the legend does not hide the bars.
	var top float64
	for i, w := range weights {
		top = max(top, slices.Max(w), h.tails[i][0], h.tails[i][1])
	}
	p.Y.Min = 0
	p.Y.Max = top * (1.05 + 0.06*float64(len(series)))
	// the tail bars: tailBins bins wide, a bin's width apart from the bins
	tw := tailBins * width
	underLo, overLo := lo-width-tw, hi+width
	if tails {
		p.X.Min, p.X.Max = underLo-width, overLo+tw+width
	}
	var tailTop [2]float64
	for i, s := range series {
		c := seriesColor(i)
		fill := c
		fill.A = uint8(math.Round(histogramAlpha * 255))
		hist := &plotter.Histogram{
			Bins:      make([]plotter.HistogramBin, bins),
			Width:     width,
			FillColor: fill,
			LineStyle: draw.LineStyle{Color: c, Width: vg.Points(0.5)},
		}
		for b := range hist.Bins {
			hist.Bins[b] = plotter.HistogramBin{
				Min:    lo + float64(b)*width,
				Max:    lo + float64(b+1)*width,
				Weight: weights[i][b],
			}
		}
		p.Add(hist)
		name := s.Name
		if n := h.counts[i]; n[0] > 0 || n[1] > 0 {
			name = fmt.Sprintf("%s (%d below %.4g, %d above %.4g)", s.Name, n[0], lo, n[1], hi)
		}
		p.Legend.Add(name, hist)
		if !tails {
			continue
		}
		tail := &plotter.Histogram{
			Bins: []plotter.HistogramBin{
				{Min: underLo, Max: underLo + tw, Weight: h.tails[i][0]},
				{Min: overLo, Max: overLo + tw, Weight: h.tails[i][1]},
			},
			Width:     tw,
			FillColor: fill,
			LineStyle: draw.LineStyle{Color: c, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(3), vg.Points(2)}},
		}
		p.Add(tail)
		tailTop[0], tailTop[1] = max(tailTop[0], h.tails[i][0]), max(tailTop[1], h.tails[i][1])
	}
	if tails {
		labels, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    plotter.XYs{{X: underLo, Y: tailTop[0] + 0.02*top}, {X: overLo, Y: tailTop[1] + 0.02*top}},
			Labels: []string{fmt.Sprintf("< %.4g", lo), fmt.Sprintf("> %.4g", hi)},
		})
		if err == nil {
			p.Add(labels)
		}
	}
	img := render(p, HistogramWidth, HistogramHeight)
	if err := writePNG(path, img); err != nil {
		return fmt.Errorf("viz: writing histogram %s: %w", path, err)
	}
	return nil
}

// tailRatio bounds how much wider than the central 99% of the values the
// bins may be before values beyond them go to tail bars; tailBins is the
// width of a tail bar in bins.
const (
	tailRatio = 4
	tailBins  = 3
)

// binned is the result of densityBins.
type binned struct {
	// lo and width give the bin edges lo + k*width, k = 0..bins.
	lo, width float64
	// weights[i][b] is series i's density in bin b.
	weights [][]float64
	// counts[i] are series i's numbers of non-NaN values below lo and
	// above the last edge; tails[i] their densities in the tail bars
	// (count / (n · tailBins · width)).
	counts [][2]int
	tails  [][2]float64
	// below and above are the counts summed over the series.
	below, above int
}

// densityBins computes the common bin edges, the density of each series in
// each bin and its tails, as documented on Histogram.
func densityBins(series []Series, bins int) (binned, error) {
	if len(series) == 0 {
		return binned{}, fmt.Errorf("no series")
	}
	if bins < 1 {
		return binned{}, fmt.Errorf("bins = %d, need at least 1", bins)
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
			return binned{}, fmt.Errorf("series %d (%q) has no non-NaN values", i, s.Name)
		}
	}
	if len(pooled) == 0 {
		return binned{}, fmt.Errorf("no finite values in any series")
	}
	slices.Sort(pooled)
	lo := percentile(pooled, 0.005)
	hi := percentile(pooled, 0.995)
	if first, last := pooled[0], pooled[len(pooled)-1]; last-first <= tailRatio*(hi-lo) {
		lo, hi = first, last
	}
	if !(hi > lo) {
		lo, hi = lo-0.5, hi+0.5
	}
	h := binned{lo: lo, width: (hi - lo) / float64(bins)}
	for _, s := range series {
		w := make([]float64, bins)
		var c [2]int
		n := 0
		for _, v := range s.Values {
			switch {
			case math.IsNaN(v):
				continue
			case v < lo:
				c[0]++
			case v > hi:
				c[1]++
			default:
				w[binIndex(v, lo, hi, h.width, bins)]++
			}
			n++
		}
		scale := 1 / (float64(n) * h.width)
		for b := range w {
			w[b] *= scale
		}
		h.weights = append(h.weights, w)
		h.counts = append(h.counts, c)
		h.tails = append(h.tails, [2]float64{float64(c[0]) * scale / tailBins, float64(c[1]) * scale / tailBins})
		h.below += c[0]
		h.above += c[1]
	}
	return h, nil
}

// binIndex returns the bin of the value v in [lo, hi] among bins bins of
// the given width starting at lo: the last bin is closed on the right.
// Values outside [lo, hi] are the caller's (tail bars); binIndex clamps
// them to the nearest bin.
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
