package viz

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"

	"github.com/flowood/flowood/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// dpi is the resolution at which plots are rasterised; with it, one
// typographic point is 100/72 pixels.
const dpi = 100

// palette holds the distinct, opaque series colours, used in order and
// cycled when there are more series than colours.
var palette = []color.NRGBA{
	{R: 31, G: 119, B: 180, A: 255},  // blue
	{R: 255, G: 127, B: 14, A: 255},  // orange
	{R: 44, G: 160, B: 44, A: 255},   // green
	{R: 214, G: 39, B: 40, A: 255},   // red
	{R: 148, G: 103, B: 189, A: 255}, // purple
	{R: 140, G: 86, B: 75, A: 255},   // brown
	{R: 227, G: 119, B: 194, A: 255}, // pink
	{R: 127, G: 127, B: 127, A: 255}, // grey
	{R: 188, G: 189, B: 34, A: 255},  // olive
	{R: 23, G: 190, B: 207, A: 255},  // cyan
}

// seriesColor returns the opaque colour of series i.
func seriesColor(i int) color.NRGBA {
	return palette[i%len(palette)]
}

// render rasterises p onto a white canvas of wpx by hpx pixels.
func render(p *plot.Plot, wpx, hpx int) image.Image {
	w := vg.Length(wpx) / dpi * vg.Inch
	h := vg.Length(hpx) / dpi * vg.Inch
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))
	p.Draw(draw.New(c))
	return c.Image()
}

// writePNG encodes img as PNG and writes it to path atomically: on
// failure any existing file at path is left as it was.
func writePNG(path string, img image.Image) error {
	return atomicfile.Write(path, func(f *os.File) error {
		if err := png.Encode(f, img); err != nil {
			return fmt.Errorf("encoding PNG: %w", err)
		}
		return nil
	})
}
