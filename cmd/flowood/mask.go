package main

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"

	"github.com/flowood/flowood/flow/mask"
	"github.com/flowood/flowood/internal/atomicfile"
)

const maskUsage = "mask show --mask NAME [--height 28] [--width 28] [--couplings 8] [--pixel N] --out masks.png"

var maskCmd = &command{
	UsageLine: maskUsage,
	Short:     "draw the masks of a sequence of couplings (as the paper's Fig. 7 and 12)",
	Run:       runMask,
}

// init registers the command; it runs after main.go's init, which makes
// the command table (files initialise in the order of their names).
func init() { commands["mask"] = maskCmd }

// Colours of mask show: conditioning (seen by the st-network),
// transformed, untouched (neither), and the gaps between panels.
var (
	maskCondColor      = color.NRGBA{R: 31, G: 119, B: 180, A: 255} // blue
	maskTransColor     = color.NRGBA{R: 214, G: 39, B: 40, A: 255}  // red, as the paper's masked regions
	maskUntouchedColor = color.NRGBA{R: 210, G: 210, B: 210, A: 255}
	maskGapColor       = color.NRGBA{R: 255, G: 255, B: 255, A: 255}
)

func runMask(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "show" && !isHelp(args[0])) {
		return fmt.Errorf("mask: want a subcommand: flowood %s", maskUsage)
	}
	if args[0] == "show" {
		args = args[1:]
	}
	fs := newFlags("mask", stderr)
	name := fs.String("mask", "checkerboard", "mask sequence: checkerboard, horizontal, vertical, cycle, centre or bitmap:PATH.png")
	h := fs.Int("height", 28, "image height in pixels")
	w := fs.Int("width", 28, "image width in pixels")
	n := fs.Int("couplings", 8, "number of couplings to draw")
	px := fs.Int("pixel", 0, "side of one image pixel in the drawing, in PNG pixels (0: about 224 per panel)")
	out := fs.String("out", "", "PNG file to write (required)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return fmt.Errorf("mask show: unexpected argument %q", pos[0])
	case *out == "":
		return fmt.Errorf("mask show: --out FILE.png is required")
	case *h < 1 || *h > 4096 || *w < 1 || *w > 4096:
		return fmt.Errorf("mask show: --height %d and --width %d must be in [1, 4096]", *h, *w)
	case *n < 1 || *n > 64:
		return fmt.Errorf("mask show: --couplings %d must be in [1, 64]", *n)
	case *px < 0 || *px > 64:
		return fmt.Errorf("mask show: --pixel %d must be in [0, 64]", *px)
	}
	pairs, err := mask.Sequence(*name, *n, *h, *w, 1)
	if err != nil {
		return fmt.Errorf("mask show: --mask %s: %w", *name, err)
	}
	if *px == 0 {
		*px = max(1, 224/max(*h, *w))
	}
	img := drawMasks(pairs, *px)
	if err := atomicfile.Write(*out, func(f *os.File) error { return png.Encode(f, img) }); err != nil {
		return fmt.Errorf("mask show: --out %s: %w", *out, err)
	}
	fmt.Fprintf(stdout, "wrote %s: %d couplings of mask %s on %dx%d images, left to right; blue: conditioning (what the st-network sees), red: transformed, grey: untouched\n",
		*out, *n, *name, *h, *w)
	return nil
}

// drawMasks draws the pairs side by side, px image pixels per mask pixel
// (channel 0 of each mask), with gaps between panels.
func drawMasks(pairs []mask.Pair, px int) *image.NRGBA {
	h, w := pairs[0].Cond.Shape[0], pairs[0].Cond.Shape[1]
	c := pairs[0].Cond.Shape[2]
	gap := max(2, px)
	pw, ph := w*px, h*px
	img := image.NewNRGBA(image.Rect(0, 0, len(pairs)*(pw+gap)+gap, ph+2*gap))
	for y := 0; y < img.Rect.Dy(); y++ {
		for x := 0; x < img.Rect.Dx(); x++ {
			img.SetNRGBA(x, y, maskGapColor)
		}
	}
	for k, p := range pairs {
		x0 := gap + k*(pw+gap)
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				col := maskUntouchedColor
				switch idx := (i*w + j) * c; {
				case p.Cond.Data[idx] == 1:
					col = maskCondColor
				case p.Trans.Data[idx] == 1:
					col = maskTransColor
				}
				for dy := 0; dy < px; dy++ {
					for dx := 0; dx < px; dx++ {
						img.SetNRGBA(x0+j*px+dx, gap+i*px+dy, col)
					}
				}
			}
		}
	}
	return img
}
