package viz

import (
	"fmt"
	"image/color"

	"github.com/flowood/flowood/ood"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ROCWidth and ROCHeight are the pixel dimensions of the PNG written by
// ROC.
const (
	ROCWidth  = 600
	ROCHeight = 600
)

// ROCCurve is one ROC curve to draw: the scores of an in-distribution set
// and of an OOD set, with higher scores meaning more in-distribution, as in
// package ood.
type ROCCurve struct {
	// Name labels the curve in the legend, followed by its AUROC.
	Name string
	// In holds the in-distribution scores (the positive class).
	In []float64
	// Out holds the OOD scores.
	Out []float64
}

// ROC writes to path a PNG (ROCWidth by ROCHeight pixels) of the ROC
// curves of curves, each in a distinct colour, together with the dashed
// diagonal of a chance-level detector. Following package ood,
// in-distribution is the positive class and an example is accepted when
// its score is at least the threshold, so the x axis is the fraction of
// OOD examples accepted and the y axis the fraction of in-distribution
// examples accepted. Each legend entry reads "Name (AUROC 0.xxxx)" with
// the AUROC of ood.AUROC.
//
// ROC returns an error, naming path, if curves is empty, if a curve has
// an empty score set or a NaN score, or if the file cannot be written.
func ROC(path string, curves []ROCCurve) error {
	if len(curves) == 0 {
		return fmt.Errorf("viz: ROC %s: no curves", path)
	}
	p := plot.New()
	p.Title.Text = "ROC (in-distribution positive)"
	p.X.Label.Text = "false positive rate (OOD accepted)"
	p.Y.Label.Text = "true positive rate (in-distribution accepted)"
	p.X.Min, p.X.Max = 0, 1
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())

	chance := plotter.NewFunction(func(x float64) float64 { return x })
	chance.LineStyle = draw.LineStyle{
		Color:  color.Gray{Y: 150},
		Width:  vg.Points(1),
		Dashes: []vg.Length{vg.Points(4), vg.Points(3)},
	}
	p.Add(chance)

	for i, c := range curves {
		fpr, tpr, _ := ood.ROC(c.In, c.Out)
		if fpr == nil {
			return fmt.Errorf("viz: ROC %s: curve %d (%q): score sets must be non-empty and free of NaN", path, i, c.Name)
		}
		xys := make(plotter.XYs, len(fpr))
		for k := range fpr {
			xys[k].X, xys[k].Y = fpr[k], tpr[k]
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("viz: ROC %s: curve %d (%q): %w", path, i, c.Name, err)
		}
		l.LineStyle = draw.LineStyle{Color: seriesColor(i), Width: vg.Points(1.5)}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (AUROC %.4f)", c.Name, ood.AUROC(c.In, c.Out)), l)
	}
	img := render(p, ROCWidth, ROCHeight)
	if err := writePNG(path, img); err != nil {
		return fmt.Errorf("viz: writing ROC %s: %w", path, err)
	}
	return nil
}
