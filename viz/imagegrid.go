package viz

import (
	"fmt"
	"image"
	"image/color"
	"math"
)

// GridPad is the width in pixels of the mid-grey border that ImageGrid
// draws around and between tiles.
const GridPad = 2

// gridBackground is the border colour of ImageGrid, visible against both
// black and white image backgrounds.
const gridBackground = 128

// ImageGrid writes to path a PNG that tiles images in a grid, row by row,
// for looking at model samples or latent variables. Each image holds h*w*c
// values in HWC order (row-major, channels last) with c = 1 (greyscale) or
// c = 3 (RGB); values are intensities in [0, 1], values outside are
// clamped and NaN is drawn as 0. A value v maps to the 8-bit level
// round(255*v).
//
// The grid has C = min(cols, len(images)) columns and
// R = ceil(len(images)/C) rows, with tiles separated and surrounded by
// GridPad-pixel mid-grey borders, so the PNG is C*w + (C+1)*GridPad pixels
// wide and R*h + (R+1)*GridPad pixels high; unused cells in the last row
// are left grey. The PNG is greyscale when c = 1 and RGB otherwise.
//
// ImageGrid returns an error, naming path, if images is empty, if h, w or
// cols is less than 1, if c is neither 1 nor 3, if an image does not have
// h*w*c values, or if the file cannot be written.
func ImageGrid(path string, images [][]float32, h, w, c int, cols int) error {
	if err := checkGrid(images, h, w, c, cols); err != nil {
		return fmt.Errorf("viz: image grid %s: %w", path, err)
	}
	cols = min(cols, len(images))
	rows := (len(images) + cols - 1) / cols
	W := cols*w + (cols+1)*GridPad
	H := rows*h + (rows+1)*GridPad
	rect := image.Rect(0, 0, W, H)

	var img image.Image
	if c == 1 {
		g := image.NewGray(rect)
		for i := range g.Pix {
			g.Pix[i] = gridBackground
		}
		for n, im := range images {
			x0, y0 := tileOrigin(n, cols, h, w)
			for y := range h {
				for x := range w {
					g.SetGray(x0+x, y0+y, color.Gray{Y: level(im[y*w+x])})
				}
			}
		}
		img = g
	} else {
		rgba := image.NewNRGBA(rect)
		for i := 0; i < len(rgba.Pix); i += 4 {
			rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2], rgba.Pix[i+3] = gridBackground, gridBackground, gridBackground, 255
		}
		for n, im := range images {
			x0, y0 := tileOrigin(n, cols, h, w)
			for y := range h {
				for x := range w {
					k := (y*w + x) * 3
					rgba.SetNRGBA(x0+x, y0+y, color.NRGBA{R: level(im[k]), G: level(im[k+1]), B: level(im[k+2]), A: 255})
				}
			}
		}
		img = rgba
	}
	if err := writePNG(path, img); err != nil {
		return fmt.Errorf("viz: writing image grid %s: %w", path, err)
	}
	return nil
}

// checkGrid validates the arguments of ImageGrid.
func checkGrid(images [][]float32, h, w, c, cols int) error {
	switch {
	case len(images) == 0:
		return fmt.Errorf("no images")
	case h < 1 || w < 1:
		return fmt.Errorf("image size %dx%d, need at least 1x1", h, w)
	case c != 1 && c != 3:
		return fmt.Errorf("%d channels, need 1 or 3", c)
	case cols < 1:
		return fmt.Errorf("cols = %d, need at least 1", cols)
	}
	for i, im := range images {
		if len(im) != h*w*c {
			return fmt.Errorf("image %d has %d values, want h*w*c = %d*%d*%d = %d", i, len(im), h, w, c, h*w*c)
		}
	}
	return nil
}

// tileOrigin returns the pixel coordinates of the top-left corner of tile
// n in a grid with cols columns of h by w tiles.
func tileOrigin(n, cols, h, w int) (x0, y0 int) {
	r, col := n/cols, n%cols
	return GridPad + col*(w+GridPad), GridPad + r*(h+GridPad)
}

// level maps an intensity in [0, 1] to an 8-bit level, clamping values
// outside the range and mapping NaN to 0.
func level(v float32) uint8 {
	f := float64(v)
	switch {
	case math.IsNaN(f) || f <= 0:
		return 0
	case f >= 1:
		return 255
	}
	return uint8(math.Round(f * 255))
}
