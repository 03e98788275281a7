package mask

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strings"

	"github.com/flowood/flowood/tensor"
)

// Names lists the named mask sequences of spatial couplings; a bitmap is
// named "bitmap:PATH.png".
var Names = []string{"checkerboard", "horizontal", "vertical", "cycle", "centre"}

// Spec is a parsed mask sequence: one of Names, or a bitmap read from a
// PNG file. The zero Spec is the checkerboard.
type Spec struct {
	// Name is one of Names, or "bitmap".
	Name string
	// Path is the bitmap's PNG file.
	Path string
	// bits is the bitmap, bh x bw, true where its pixel is light.
	bits   []bool
	bh, bw int
}

// Parse reads a mask sequence name: checkerboard (also ""), horizontal,
// vertical, cycle, centre (or center), channel (the channel-wise mask:
// not spatial, and only for an even number of channels), or
// bitmap:PATH.png, whose file it reads (LoadBitmap). Errors name what is
// wrong.
func Parse(s string) (Spec, error) {
	switch s {
	case "", "checkerboard":
		return Spec{Name: "checkerboard"}, nil
	case "center":
		return Spec{Name: "centre"}, nil
	case "horizontal", "vertical", "cycle", "centre", "channel":
		return Spec{Name: s}, nil
	}
	if path, ok := strings.CutPrefix(s, "bitmap:"); ok {
		bits, h, w, err := LoadBitmap(path)
		if err != nil {
			return Spec{}, err
		}
		return Spec{Name: "bitmap", Path: path, bits: bits, bh: h, bw: w}, nil
	}
	return Spec{}, fmt.Errorf("unknown mask %q (known: %s, bitmap:PATH.png)", s, strings.Join(Names, ", "))
}

// String returns the name Parse reads back.
func (s Spec) String() string {
	if s.Name == "bitmap" {
		return "bitmap:" + s.Path
	}
	if s.Name == "" {
		return "checkerboard"
	}
	return s.Name
}

// Period returns the number of couplings after which the sequence repeats:
// 4 for the cycle mask, 2 for the others.
func (s Spec) Period() int {
	if s.Name == "cycle" {
		return 4
	}
	return 2
}

// Pair returns the masks of coupling k (from 0) of the sequence for
// images of h x w x c:
//
//   - checkerboard, horizontal, vertical, centre, bitmap: the mask for
//     even k and its reverse for odd k, Trans the complement of Cond;
//     horizontal first changes the bottom half from the top half, then
//     the reverse; a bitmap's light pixels condition in even couplings;
//   - channel: the first half of the channels for even k, the second for
//     odd k;
//   - cycle (App. L.1, Fig. 12): Cond is quadrant k mod 4 and Trans
//     quadrant (k+1) mod 4 (Quadrant), so the other two quadrants pass
//     through unseen and information needs four couplings to come back
//     to a quadrant.
//
// It is an error when the images do not fit the mask: a bitmap of another
// size, an odd number of channels for the channel mask, or images so
// small that a coupling would see or change nothing (except for the
// checkerboard, which 1x1 images have always been allowed).
func (s Spec) Pair(k, h, w, c int) (Pair, error) {
	if h < 1 || w < 1 || c < 1 || k < 0 {
		return Pair{}, fmt.Errorf("mask %s: coupling %d of %dx%dx%d images", s, k, h, w, c)
	}
	rev := k%2 == 1
	var p Pair
	switch s.Name {
	case "", "checkerboard":
		p = Complement(Checkerboard(h, w, c, rev))
	case "horizontal":
		p = Complement(Horizontal(h, w, c, rev))
	case "vertical":
		p = Complement(Vertical(h, w, c, rev))
	case "centre":
		p = Complement(Centre(h, w, c, rev))
	case "channel":
		if c%2 != 0 {
			return Pair{}, fmt.Errorf("mask channel splits the channels in half, and the images have %d channel(s)", c)
		}
		p = Complement(Channel(h, w, c, rev))
	case "cycle":
		p = Pair{Cond: Quadrant(h, w, c, k%4), Trans: Quadrant(h, w, c, (k+1)%4)}
	case "bitmap":
		if h != s.bh || w != s.bw {
			return Pair{}, fmt.Errorf("mask bitmap %s: %dx%d pixels (width x height), the images are %dx%d", s.Path, s.bw, s.bh, w, h)
		}
		p = Complement(Bitmap(h, w, c, s.bits, rev))
	default:
		return Pair{}, fmt.Errorf("unknown mask %q (known: %s, bitmap:PATH.png)", s.Name, strings.Join(Names, ", "))
	}
	// The checkerboard of a 1x1 image is allowed (the multiscale RealNVP
	// has always built such last scales, as identities and constant
	// shifts).
	if (empty(p.Cond) || empty(p.Trans)) && s.Name != "checkerboard" && s.Name != "" {
		return Pair{}, fmt.Errorf("mask %s on %dx%d images: coupling %d would %s nothing", s, h, w, k,
			map[bool]string{true: "see", false: "change"}[empty(p.Cond)])
	}
	return p, nil
}

// Sequence returns the pairs of couplings 0..n-1 of the named sequence
// (Parse, then Spec.Pair).
func Sequence(name string, n, h, w, c int) ([]Pair, error) {
	s, err := Parse(name)
	if err != nil {
		return nil, err
	}
	ps := make([]Pair, n)
	for k := range ps {
		if ps[k], err = s.Pair(k, h, w, c); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

func empty(m *tensor.Tensor) bool {
	for _, v := range m.Data {
		if v != 0 {
			return false
		}
	}
	return true
}

// maxBitmapSide bounds the sides of a bitmap mask (far above any image
// size the models take).
const maxBitmapSide = 4096

// LoadBitmap reads a mask from a PNG file: bits[i*w+j] is true where pixel
// (row i, column j) is light (grey level at least half, transparent
// pixels counting as black). Errors name the file: unreadable, not a PNG,
// too large, or all light or all dark (a coupling would see or change
// nothing).
func LoadBitmap(path string) (bits []bool, h, w int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("mask bitmap: %w", err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("mask bitmap %s: not a readable PNG: %w", path, err)
	}
	if cfg.Width > maxBitmapSide || cfg.Height > maxBitmapSide {
		return nil, 0, 0, fmt.Errorf("mask bitmap %s: %dx%d pixels, more than %d on a side", path, cfg.Width, cfg.Height, maxBitmapSide)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, 0, 0, fmt.Errorf("mask bitmap %s: %w", path, err)
	}
	img, err := png.Decode(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("mask bitmap %s: not a readable PNG: %w", path, err)
	}
	return bitsOf(img, path)
}

func bitsOf(img image.Image, path string) ([]bool, int, int, error) {
	b := img.Bounds()
	h, w := b.Dy(), b.Dx()
	bits := make([]bool, h*w)
	light := 0
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			g := color.GrayModel.Convert(img.At(b.Min.X+j, b.Min.Y+i)).(color.Gray)
			if g.Y >= 128 {
				bits[i*w+j] = true
				light++
			}
		}
	}
	if light == 0 || light == h*w {
		return nil, 0, 0, fmt.Errorf("mask bitmap %s: every pixel is %s; a mask needs light (conditioning) and dark (transformed) pixels",
			path, map[bool]string{true: "dark", false: "light"}[light == 0])
	}
	return bits, h, w, nil
}
