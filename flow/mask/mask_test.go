package mask

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/tensor"
)

func at(m *tensor.Tensor, i, j, k int) float32 {
	return m.Data[(i*m.Shape[1]+j)*m.Shape[2]+k]
}

// drawn returns the grid of p drawn as rows of C (conditioning),
// T (transformed) and . (untouched), checking every channel agrees.
func drawn(t *testing.T, p Pair) string {
	t.Helper()
	h, w, c := p.Cond.Shape[0], p.Cond.Shape[1], p.Cond.Shape[2]
	var rows []string
	for i := 0; i < h; i++ {
		var b strings.Builder
		for j := 0; j < w; j++ {
			ch := byte('?')
			for k := 0; k < c; k++ {
				var x byte
				switch cv, tv := at(p.Cond, i, j, k), at(p.Trans, i, j, k); {
				case cv == 1 && tv == 0:
					x = 'C'
				case cv == 0 && tv == 1:
					x = 'T'
				case cv == 0 && tv == 0:
					x = '.'
				default:
					x = '!'
				}
				if k > 0 && x != ch {
					t.Fatalf("channels disagree at (%d,%d)", i, j)
				}
				ch = x
			}
			b.WriteByte(ch)
		}
		rows = append(rows, b.String())
	}
	return strings.Join(rows, "\n")
}

// grid joins rows written out by hand.
func grid(rows ...string) string { return strings.Join(rows, "\n") }

func TestSequencesHandDrawn(t *testing.T) {
	for _, tc := range []struct {
		name string
		h, w int
		want []string // per coupling k
	}{
		{"checkerboard", 4, 4, []string{
			grid("CTCT", "TCTC", "CTCT", "TCTC"),
			grid("TCTC", "CTCT", "TCTC", "CTCT"),
			grid("CTCT", "TCTC", "CTCT", "TCTC"),
		}},
		// Sec. 4.2: first the bottom half from the top half, then the reverse.
		{"horizontal", 4, 4, []string{
			grid("CCCC", "CCCC", "TTTT", "TTTT"),
			grid("TTTT", "TTTT", "CCCC", "CCCC"),
		}},
		{"vertical", 4, 4, []string{
			grid("CCTT", "CCTT", "CCTT", "CCTT"),
			grid("TTCC", "TTCC", "TTCC", "TTCC"),
		}},
		// App. L.1 / Fig. 12: quadrant k -> quadrant k+1, clockwise from
		// the top left, the other two untouched; period 4.
		{"cycle", 4, 4, []string{
			grid("CCTT", "CCTT", "....", "...."),
			grid("..CC", "..CC", "..TT", "..TT"),
			grid("....", "....", "TTCC", "TTCC"),
			grid("TT..", "TT..", "CC..", "CC.."),
			grid("CCTT", "CCTT", "....", "...."),
		}},
		// Odd sides: the top half and left half are the floor.
		{"cycle", 5, 3, []string{
			grid("CTT", "CTT", "...", "...", "..."),
			grid(".CC", ".CC", ".TT", ".TT", ".TT"),
		}},
		// 6x6: margin round(6(1-1/√2)/2) = 1.
		{"centre", 6, 6, []string{
			grid("TTTTTT", "TCCCCT", "TCCCCT", "TCCCCT", "TCCCCT", "TTTTTT"),
			grid("CCCCCC", "CTTTTC", "CTTTTC", "CTTTTC", "CTTTTC", "CCCCCC"),
		}},
	} {
		for _, c := range []int{1, 3} {
			ps, err := Sequence(tc.name, len(tc.want), tc.h, tc.w, c)
			if err != nil {
				t.Fatal(err)
			}
			for k, p := range ps {
				if err := p.Check(); err != nil {
					t.Errorf("%s k=%d: %v", tc.name, k, err)
				}
				if got := drawn(t, p); got != tc.want[k] {
					t.Errorf("%s %dx%dx%d coupling %d:\n%s\nwant\n%s", tc.name, tc.h, tc.w, c, k, got, tc.want[k])
				}
			}
		}
	}
}

func TestCentreMargin(t *testing.T) {
	// 28: the reference code's margin 4; the centre holds about half.
	for _, tc := range []struct{ n, want int }{{28, 4}, {32, 5}, {6, 1}, {2, 0}} {
		if got := CentreMargin(tc.n); got != tc.want {
			t.Errorf("CentreMargin(%d) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

func TestMasks(t *testing.T) {
	const h, w, c = 4, 6, 2
	for _, tc := range []struct {
		name string
		m    func(rev bool) *tensor.Tensor
		keep func(i, j, k int) bool
	}{
		{"checkerboard", func(r bool) *tensor.Tensor { return Checkerboard(h, w, c, r) }, func(i, j, _ int) bool { return (i+j)%2 == 0 }},
		{"channel", func(r bool) *tensor.Tensor { return Channel(h, w, c, r) }, func(_, _, k int) bool { return k == 0 }},
		{"horizontal", func(r bool) *tensor.Tensor { return Horizontal(h, w, c, r) }, func(i, _, _ int) bool { return i < 2 }},
		{"vertical", func(r bool) *tensor.Tensor { return Vertical(h, w, c, r) }, func(_, j, _ int) bool { return j < 3 }},
		{"bitmap", func(r bool) *tensor.Tensor {
			bits := make([]bool, h*w)
			bits[5], bits[7] = true, true
			return Bitmap(h, w, c, bits, r)
		}, func(i, j, _ int) bool { p := i*w + j; return p == 5 || p == 7 }},
	} {
		m, rev := tc.m(false), tc.m(true)
		for i := 0; i < h; i++ {
			for j := 0; j < w; j++ {
				for k := 0; k < c; k++ {
					want := float32(0)
					if tc.keep(i, j, k) {
						want = 1
					}
					if at(m, i, j, k) != want || at(rev, i, j, k) != 1-want {
						t.Fatalf("%s at (%d,%d,%d): mask %v, reverse %v, want %v", tc.name, i, j, k, at(m, i, j, k), at(rev, i, j, k), want)
					}
				}
			}
		}
	}
}

func TestChannelSplit(t *testing.T) {
	if first, ok := ChannelSplit(Channel(2, 2, 4, false)); !ok || !first {
		t.Errorf("Channel(false): first %v ok %v", first, ok)
	}
	if first, ok := ChannelSplit(Channel(2, 2, 4, true)); !ok || first {
		t.Errorf("Channel(true): first %v ok %v", first, ok)
	}
	if _, ok := ChannelSplit(Checkerboard(2, 2, 4, false)); ok {
		t.Error("checkerboard detected as a channel mask")
	}
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBitmapPNG(t *testing.T) {
	dir := t.TempDir()
	// A 3-wide, 2-high drawing: light pixels at (0,0), (0,2) and (1,1).
	img := image.NewGray(image.Rect(0, 0, 3, 2))
	for _, p := range [][2]int{{0, 0}, {0, 2}, {1, 1}} {
		img.SetGray(p[1], p[0], color.Gray{Y: 200})
	}
	img.SetGray(1, 0, color.Gray{Y: 127}) // below half: dark
	good := filepath.Join(dir, "m.png")
	writePNG(t, good, img)
	ps, err := Sequence("bitmap:"+good, 2, 2, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := drawn(t, ps[0]), grid("CTC", "TCT"); got != want {
		t.Errorf("bitmap coupling 0:\n%s\nwant\n%s", got, want)
	}
	if got, want := drawn(t, ps[1]), grid("TCT", "CTC"); got != want {
		t.Errorf("bitmap coupling 1:\n%s\nwant\n%s", got, want)
	}

	// Errors name the file and what is wrong.
	garbage := filepath.Join(dir, "garbage.png")
	if err := os.WriteFile(garbage, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	allDark := filepath.Join(dir, "dark.png")
	writePNG(t, allDark, image.NewGray(image.Rect(0, 0, 3, 2)))
	s, err := Parse("bitmap:" + good)
	if err != nil {
		t.Fatal(err)
	}
	_, sizeErr := s.Pair(0, 28, 28, 1)
	_, missingErr := Parse("bitmap:" + filepath.Join(dir, "missing.png"))
	_, garbageErr := Parse("bitmap:" + garbage)
	_, darkErr := Parse("bitmap:" + allDark)
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{sizeErr, []string{good, "3x2", "28x28"}},
		{missingErr, []string{"missing.png", "no such file"}},
		{garbageErr, []string{garbage, "not a readable PNG"}},
		{darkErr, []string{allDark, "every pixel is dark"}},
	} {
		if tc.err == nil {
			t.Errorf("no error, want one with %q", tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(tc.err.Error(), w) {
				t.Errorf("error %q does not mention %q", tc.err, w)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	if _, err := Parse("diagonal"); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("Parse(diagonal): %v, want an error listing the known masks", err)
	}
	// 1-high images: the horizontal mask would leave a coupling nothing to see.
	if _, err := Sequence("horizontal", 2, 1, 4, 1); err == nil {
		t.Error("horizontal mask on 1x4 images: no error")
	}
	if _, err := Sequence("centre", 2, 2, 2, 1); err == nil {
		t.Error("centre mask on 2x2 images (margin 0): no error")
	}
	if _, err := Sequence("channel", 1, 4, 4, 1); err == nil || !strings.Contains(err.Error(), "1 channel") {
		t.Errorf("channel mask on 1 channel: %v, want an error naming the channel count", err)
	}
	if s, _ := Parse("center"); s.String() != "centre" {
		t.Errorf("Parse(center) = %v", s)
	}
}

// TestName checks that Name recognises each named mask in both
// orientations and calls anything else custom.
func TestName(t *testing.T) {
	for _, c := range []struct {
		name string
		m    func(h, w, c int, reverse bool) *tensor.Tensor
	}{{"checkerboard", Checkerboard}, {"channel", Channel}, {"horizontal", Horizontal}, {"vertical", Vertical}} {
		for _, rev := range []bool{false, true} {
			if got := Name(c.m(6, 4, 2, rev)); got != c.name {
				t.Errorf("%s (reverse %v): Name = %q", c.name, rev, got)
			}
		}
	}
	bits := make([]bool, 16)
	bits[5] = true
	if got := Name(Bitmap(4, 4, 1, bits, false)); got != "custom" {
		t.Errorf("one-pixel bitmap: Name = %q, want custom", got)
	}
	// a channel mask needs an even channel count; with one channel the
	// horizontal mask must still be found
	if got := Name(Horizontal(4, 4, 1, false)); got != "horizontal" {
		t.Errorf("one-channel horizontal: Name = %q", got)
	}
}
