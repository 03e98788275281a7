package viz

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// decode reads the PNG at path and checks its dimensions.
func decode(t *testing.T, path string, w, h int) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("%s is %dx%d, want %dx%d", path, b.Dx(), b.Dy(), w, h)
	}
	return img
}

// onlyFile checks that dir contains exactly the file name, so no temporary
// files were left behind.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Errorf("directory holds %v, want only %s", names, name)
	}
}

func normals(rng *rand.Rand, n int, mean, sd float64) []float64 {
	x := make([]float64, n)
	for i := range x {
		x[i] = mean + sd*rng.NormFloat64()
	}
	return x
}

// countNear counts pixels within tol of c in every 8-bit channel.
func countNear(img image.Image, c color.NRGBA, tol int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if absDiff(p.R, c.R) <= tol && absDiff(p.G, c.G) <= tol && absDiff(p.B, c.B) <= tol {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// overWhite returns the colour of series i's translucent fill over white.
func overWhite(i int) color.NRGBA {
	c := seriesColor(i)
	a := math.Round(histogramAlpha*255) / 255
	mix := func(v uint8) uint8 { return uint8(math.Round(a*float64(v) + (1-a)*255)) }
	return color.NRGBA{R: mix(c.R), G: mix(c.G), B: mix(c.B), A: 255}
}

func TestHistogramPNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	train := normals(rng, 3000, -1000, 30)
	test := normals(rng, 1000, -1010, 30)
	ood := normals(rng, 2000, -700, 40)
	// Outliers that would squash the plot without the percentile range.
	train = append(train, -1e7, math.Inf(-1), math.NaN())
	dir := t.TempDir()
	path := filepath.Join(dir, "hist.png")
	series := []Series{{"train", train}, {"test", test}, {"OOD", ood}}
	if err := Histogram(path, "log-likelihood", "log p(x)", series, 60); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path, HistogramWidth, HistogramHeight)
	onlyFile(t, dir, "hist.png")
	// The OOD series stands apart, so its translucent fill appears unmixed;
	// every series at least appears in its legend swatch.
	for i, s := range series {
		if n := countNear(img, overWhite(i), 3); n < 50 {
			t.Errorf("series %q: only %d pixels of its fill colour %v", s.Name, n, overWhite(i))
		}
	}
	// Overwriting an existing file works and stays atomic.
	if err := Histogram(path, "again", "x", series[:1], 10); err != nil {
		t.Fatal(err)
	}
	decode(t, path, HistogramWidth, HistogramHeight)
	onlyFile(t, dir, "hist.png")
}

func TestDensityBins(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	a := normals(rng, 1000, 0, 1)
	b := normals(rng, 500, 3, 1)
	a = append(a, 1e9, math.Inf(1), math.Inf(-1), math.NaN())
	const bins = 40
	h, err := densityBins([]Series{{"a", a}, {"b", b}}, bins)
	if err != nil {
		t.Fatal(err)
	}
	lo, width := h.lo, h.width
	hi := lo + bins*width
	if lo < -4 || hi > 7 || hi-lo < 4 {
		t.Errorf("range [%v, %v] not set by the central percentiles", lo, hi)
	}
	for i, s := range [][]float64{a, b} {
		// the tails hold exactly the values outside [lo, hi], and each bin
		// exactly the values inside it: nothing is folded into the edges
		var below, above, n int
		counts := make([]int, bins)
		for _, v := range s {
			switch {
			case math.IsNaN(v):
				continue
			case v < lo:
				below++
			case v > hi:
				above++
			default:
				counts[binIndex(v, lo, hi, width, bins)]++
			}
			n++
		}
		if h.counts[i] != [2]int{below, above} {
			t.Errorf("series %d: tails %v, want %d below and %d above", i, h.counts[i], below, above)
		}
		for k, c := range counts {
			if want := float64(c) / (float64(n) * width); math.Abs(h.weights[i][k]-want) > 1e-12 {
				t.Errorf("series %d bin %d: density %v, want %v", i, k, h.weights[i][k], want)
			}
		}
		// bins and tail bars together have unit area
		area := float64(tailBins) * width * (h.tails[i][0] + h.tails[i][1])
		for _, v := range h.weights[i] {
			area += v * width
		}
		if math.Abs(area-1) > 1e-9 {
			t.Errorf("series %d: area %v, want 1", i, area)
		}
	}
	// a holds -Inf, +Inf and 1e9 beyond the range
	if h.counts[0][0] < 1 || h.counts[0][1] < 2 {
		t.Errorf("series a: tails %v, want at least -Inf below and +Inf, 1e9 above", h.counts[0])
	}

	// A constant series gets a unit-wide range around its value.
	h, err = densityBins([]Series{{"c", []float64{5, 5, 5}}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if h.lo != 4.5 || h.width != 0.25 {
		t.Errorf("constant series: lo %v width %v, want 4.5 and 0.25", h.lo, h.width)
	}
	if h.weights[0][2] != 4 { // 3 values / (3 * 0.25) in the bin [5, 5.25).
		t.Errorf("constant series densities %v", h.weights[0])
	}
}

// TestHistogramNoEdgeSpikes checks that a few far outliers do not show
// as a spike in the first bin: on evenly spread values the first bin's
// density is that of its neighbours, and the outliers are counted in the
// tail.
func TestHistogramNoEdgeSpikes(t *testing.T) {
	var v []float64
	for i := range 2000 {
		v = append(v, float64(i)/2)
	}
	v = append(v, -1e6, -1e6, -1e6, -1e6, -1e6, math.Inf(-1))
	h, err := densityBins([]Series{{"ll", v}}, 50)
	if err != nil {
		t.Fatal(err)
	}
	w := h.weights[0]
	if w[0] > 1.2*w[2] || w[0] < 0.8*w[2] {
		t.Errorf("first bin density %v, its neighbours %v: a spike at the edge", w[0], w[1:3])
	}
	if h.counts[0][0] < 6 {
		t.Errorf("%d values counted below the range, want the 6 outliers at least", h.counts[0][0])
	}
	// Without outliers the bins span every value and there are no tails.
	h, err = densityBins([]Series{{"ll", v[:2000]}}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if h.lo != 0 || math.Abs(h.lo+50*h.width-999.5) > 1e-9 || h.counts[0] != [2]int{} {
		t.Errorf("range [%v, %v], tails %v; want [0, 999.5] and none", h.lo, h.lo+50*h.width, h.counts[0])
	}
}

func TestBinIndex(t *testing.T) {
	for _, c := range []struct {
		v    float64
		want int
	}{
		{math.Inf(-1), 0}, {-5, 0}, {0, 0}, {0.99, 0}, {1, 1}, {9.99, 9}, {10, 9}, {11, 9}, {math.Inf(1), 9},
	} {
		if got := binIndex(c.v, 0, 10, 1, 10); got != c.want {
			t.Errorf("binIndex(%v) = %d, want %d", c.v, got, c.want)
		}
	}
}

func TestHistogramErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "h.png")
	nan := math.NaN()
	cases := map[string]struct {
		series []Series
		bins   int
	}{
		"no series":      {nil, 10},
		"zero bins":      {[]Series{{"a", []float64{1}}}, 0},
		"empty series":   {[]Series{{"a", []float64{1}}, {"b", nil}}, 10},
		"all NaN series": {[]Series{{"a", []float64{nan}}}, 10},
		"only infinite":  {[]Series{{"a", []float64{math.Inf(-1)}}}, 10},
	}
	for name, c := range cases {
		err := Histogram(path, "t", "x", c.series, c.bins)
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the path", name, err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("failed calls created %s", path)
	}
	// An unwritable destination fails with the path in the error.
	bad := filepath.Join(dir, "missing", "h.png")
	err := Histogram(bad, "t", "x", []Series{{"a", []float64{1, 2}}}, 5)
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("writing into a missing directory: err = %v", err)
	}
}

func TestROCPNG(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	in := normals(rng, 2000, 1, 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "roc.png")
	curves := []ROCCurve{
		{Name: "near OOD", In: in, Out: normals(rng, 1500, 0, 1)},
		{Name: "far OOD", In: in, Out: normals(rng, 1500, -2, 1)},
	}
	if err := ROC(path, curves); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path, ROCWidth, ROCHeight)
	onlyFile(t, dir, "roc.png")
	for i := range curves {
		if n := countNear(img, seriesColor(i), 10); n < 100 {
			t.Errorf("curve %d: only %d pixels of its colour", i, n)
		}
	}

	for name, cs := range map[string][]ROCCurve{
		"no curves": nil,
		"empty OOD": {{Name: "a", In: []float64{1}}},
		"NaN score": {{Name: "a", In: []float64{1}, Out: []float64{math.NaN()}}},
	} {
		err := ROC(path, cs)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want an error naming %s", name, err, path)
		}
	}
}

func TestImageGridGray(t *testing.T) {
	// Three 2x3 greyscale images in 2 columns: 2 rows.
	const h, w = 2, 3
	images := [][]float32{
		{0, 0.5, 1, 0.25, 0.75, 1},
		{-1, 2, float32(math.NaN()), 0.2, 0.4, 0.6},
		{1, 1, 1, 1, 1, 1},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "grid.png")
	if err := ImageGrid(path, images, h, w, 1, 2); err != nil {
		t.Fatal(err)
	}
	W := 2*w + 3*GridPad
	H := 2*h + 3*GridPad
	img := decode(t, path, W, H)
	onlyFile(t, dir, "grid.png")
	gray := func(x, y int) uint8 { return color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y }
	if img.ColorModel() != color.GrayModel {
		t.Errorf("colour model %v, want greyscale", img.ColorModel())
	}
	checks := []struct {
		x, y int
		want uint8
	}{
		{0, 0, gridBackground},                         // border
		{GridPad, GridPad, 0},                          // image 0 (0,0)
		{GridPad + 1, GridPad, 128},                    // 0.5 -> round(127.5)
		{GridPad + 2, GridPad + 1, 255},                // image 0 (1,2)
		{GridPad, GridPad + 1, 64},                     // 0.25 -> round(63.75)
		{2*GridPad + w, GridPad, 0},                    // image 1: -1 clamped
		{2*GridPad + w + 1, GridPad, 255},              // 2 clamped
		{2*GridPad + w + 2, GridPad, 0},                // NaN -> 0
		{GridPad, 2*GridPad + h, 255},                  // image 2, row 2
		{2*GridPad + w, 2*GridPad + h, gridBackground}, // empty cell
		{W - 1, H - 1, gridBackground},                 // border
		{GridPad + w, GridPad, gridBackground},         // gutter
	}
	for _, c := range checks {
		if got := gray(c.x, c.y); got != c.want {
			t.Errorf("pixel (%d,%d) = %d, want %d", c.x, c.y, got, c.want)
		}
	}
}

func TestImageGridRGB(t *testing.T) {
	// Two 1x2 RGB images in one row (cols larger than the image count).
	images := [][]float32{
		{1, 0, 0, 0, 1, 0},
		{0, 0, 1, 0.5, 0.5, 0.5},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "rgb.png")
	if err := ImageGrid(path, images, 1, 2, 3, 8); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path, 2*2+3*GridPad, 1+2*GridPad)
	rgb := func(x, y int) color.NRGBA { return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA) }
	checks := []struct {
		x, y int
		want color.NRGBA
	}{
		{GridPad, GridPad, color.NRGBA{255, 0, 0, 255}},
		{GridPad + 1, GridPad, color.NRGBA{0, 255, 0, 255}},
		{2*GridPad + 2, GridPad, color.NRGBA{0, 0, 255, 255}},
		{2*GridPad + 3, GridPad, color.NRGBA{128, 128, 128, 255}},
		{0, 0, color.NRGBA{gridBackground, gridBackground, gridBackground, 255}},
	}
	for _, c := range checks {
		if got := rgb(c.x, c.y); got != c.want {
			t.Errorf("pixel (%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
}

func TestImageGridErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.png")
	one := [][]float32{{0.5}}
	cases := map[string]func() error{
		"no images":    func() error { return ImageGrid(path, nil, 1, 1, 1, 1) },
		"zero height":  func() error { return ImageGrid(path, one, 0, 1, 1, 1) },
		"two channels": func() error { return ImageGrid(path, [][]float32{{0, 0}}, 1, 1, 2, 1) },
		"zero cols":    func() error { return ImageGrid(path, one, 1, 1, 1, 0) },
		"wrong length": func() error { return ImageGrid(path, [][]float32{{0.5}, {0.5, 0.5}}, 1, 1, 1, 2) },
	}
	for name, f := range cases {
		err := f()
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want an error naming %s", name, err, path)
		}
	}
}
