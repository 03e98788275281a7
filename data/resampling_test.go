package data

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/flowood/flowood/data/pixels"
)

// randomImages returns n random h x w x c images.
func randomImages(rng *rand.Rand, n, h, w, c int) *Images {
	im := &Images{N: n, H: h, W: w, C: c, Pix: make([]uint8, n*h*w*c)}
	for i := range im.Pix {
		im.Pix[i] = uint8(rng.IntN(256))
	}
	return im
}

// areaByRefinement is area averaging computed another way: every source
// pixel is split into nh x nw sub-pixels, so that each output pixel covers
// exactly h x w of them, and their plain mean is the output.
func areaByRefinement(pix []uint8, h, w, c, nh, nw int) []float64 {
	out := make([]float64, nh*nw*c)
	for oy := range nh {
		for ox := range nw {
			for k := range c {
				var s float64
				for sy := oy * h; sy < (oy+1)*h; sy++ {
					for sx := ox * w; sx < (ox+1)*w; sx++ {
						s += float64(pix[((sy/nh)*w+sx/nw)*c+k])
					}
				}
				out[(oy*nw+ox)*c+k] = s / float64(h*w)
			}
		}
	}
	return out
}

// bilinearDirect is bilinear interpolation at each output pixel's centre
// mapped to the source, (o + 1/2) n/m - 1/2 clamped to the image, by the
// two-dimensional formula.
func bilinearDirect(pix []uint8, h, w, c, nh, nw int) []float64 {
	at := func(y, x, k int) float64 { return float64(pix[(y*w+x)*c+k]) }
	src := func(o, n, m int) (int, int, float64) {
		p := math.Max(0, math.Min((float64(o)+0.5)*float64(n)/float64(m)-0.5, float64(n-1)))
		lo := int(math.Floor(p))
		return lo, min(lo+1, n-1), p - float64(lo)
	}
	out := make([]float64, nh*nw*c)
	for oy := range nh {
		y0, y1, fy := src(oy, h, nh)
		for ox := range nw {
			x0, x1, fx := src(ox, w, nw)
			for k := range c {
				out[(oy*nw+ox)*c+k] = (1-fy)*((1-fx)*at(y0, x0, k)+fx*at(y0, x1, k)) + fy*((1-fx)*at(y1, x0, k)+fx*at(y1, x1, k))
			}
		}
	}
	return out
}

// nearestDirect takes the source pixel floor((o + 1/2) n/m) in floating
// point.
func nearestDirect(pix []uint8, h, w, c, nh, nw int) []float64 {
	out := make([]float64, nh*nw*c)
	for oy := range nh {
		sy := int(math.Floor((float64(oy) + 0.5) * float64(h) / float64(nh)))
		for ox := range nw {
			sx := int(math.Floor((float64(ox) + 0.5) * float64(w) / float64(nw)))
			for k := range c {
				out[(oy*nw+ox)*c+k] = float64(pix[(sy*w+sx)*c+k])
			}
		}
	}
	return out
}

// TestResizeMethodsByHand checks small cases worked out by hand.
func TestResizeMethodsByHand(t *testing.T) {
	// 4x4 holding 0..15: the 2x2 blocks' means are 2.5, 4.5, 10.5, 12.5
	// (area), rounded half up; bilinear at centres (1/2 + 2o) - 1/2 = 0.5
	// and 2.5 is the mean of the four pixels around, the same here;
	// nearest takes rows and columns floor(1) = 1 and floor(3) = 3.
	in := seq(1, 4, 4, 1)
	for _, tc := range []struct {
		method string
		want   []uint8
	}{
		{pixels.Area, []uint8{3, 5, 11, 13}},
		{pixels.Bilinear, []uint8{3, 5, 11, 13}},
		{pixels.Nearest, []uint8{5, 7, 13, 15}},
	} {
		got, err := ResizeWith(in, 2, 2, tc.method)
		if err != nil {
			t.Fatal(err)
		}
		checkPix(t, tc.method+" 4x4 to 2x2", got, 1, 2, 2, 1, tc.want)
		if got.Resampling.Method != tc.method || got.Resampling.StoredWidth != 4 || got.Resampling.Width != 2 {
			t.Errorf("%s: resampling %+v", tc.method, got.Resampling)
		}
	}
	// 1x6 (0, 60, 120, 180, 240, 250) to 1x4: area covers 1.5 pixels each,
	// (0 + 30)/1.5 = 20, (30 + 120)/1.5 = 100, (180 + 120)/1.5 = 200,
	// (120 + 250)/1.5 = 246.7; bilinear samples 0.25, 1.75, 3.25, 4.75:
	// 15, 105, 195, 247.5; nearest takes 0, 2, 3, 5.
	in = &Images{N: 1, H: 1, W: 6, C: 1, Pix: []uint8{0, 60, 120, 180, 240, 250}}
	for _, tc := range []struct {
		method string
		want   []uint8
	}{
		{pixels.Area, []uint8{20, 100, 200, 247}},
		{pixels.Bilinear, []uint8{15, 105, 195, 248}},
		{pixels.Nearest, []uint8{0, 120, 180, 250}},
	} {
		got, err := ResizeWith(in, 1, 4, tc.method)
		if err != nil {
			t.Fatal(err)
		}
		checkPix(t, tc.method+" 1x6 to 1x4", got, 1, 1, 4, 1, tc.want)
	}
	if _, err := ResizeWith(in, 1, 4, "lanczos"); err == nil || !strings.Contains(err.Error(), "lanczos") {
		t.Errorf("unknown method: %v", err)
	}
}

// TestResizeMethodsAgainstDirect compares every method with a direct
// computation on random images of odd sizes, shrinking and enlarging:
// each output within rounding (1/2) of the direct value.
func TestResizeMethodsAgainstDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	direct := map[string]func([]uint8, int, int, int, int, int) []float64{
		pixels.Area: areaByRefinement, pixels.Bilinear: bilinearDirect, pixels.Nearest: nearestDirect,
	}
	for _, sz := range [][4]int{{7, 9, 3, 4}, {10, 10, 4, 4}, {5, 3, 8, 7}, {74, 74, 32, 32}} {
		im := randomImages(rng, 2, sz[0], sz[1], 3)
		for method, ref := range direct {
			got, err := ResizeWith(im, sz[2], sz[3], method)
			if err != nil {
				t.Fatal(err)
			}
			for i := range im.N {
				want := ref(im.Image(i), sz[0], sz[1], 3, sz[2], sz[3])
				for j, v := range got.Image(i) {
					if math.Abs(float64(v)-want[j]) > 0.5+1e-9 {
						t.Fatalf("%s %dx%d to %dx%d: image %d value %d is %d, direct %.3f", method, sz[0], sz[1], sz[2], sz[3], i, j, v, want[j])
					}
				}
			}
		}
	}
}

// TestResamplingRecorded checks the provenance Load records: native
// sizes, and the resize (by Options.ResizeMethod or the default) of a
// data set brought to another size.
func TestResamplingRecorded(t *testing.T) {
	im, err := Load("mnist", "test", Options{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	r := im.Resampling
	if !r.Native() || r.StoredWidth != 28 || r.Width != 28 || !strings.Contains(r.Origin, "as published") {
		t.Errorf("native mnist: %+v", r)
	}
	im, err = Load("mnist", "test", Options{Embedded: true, Size: 32, Channels: 3})
	if err != nil {
		t.Fatal(err)
	}
	if r := im.Resampling; r.Native() || r.Method != pixels.Bilinear || r.StoredWidth != 28 || r.Width != 32 || r.Height != 32 {
		t.Errorf("mnist enlarged to 32: %+v", r)
	}
	for _, m := range pixels.Methods {
		im, err := Load("mnist", "test", Options{Embedded: true, Size: 14, ResizeMethod: m})
		if err != nil {
			t.Fatal(err)
		}
		if im.Resampling.Method != m || im.H != 14 {
			t.Errorf("ResizeMethod %s: %+v", m, im.Resampling)
		}
		want, err := ResizeWith(im0(t), 14, 14, m)
		if err != nil {
			t.Fatal(err)
		}
		checkPix(t, "mnist by "+m, im, 2000, 14, 14, 1, want.Pix)
	}
	if _, err := Load("mnist", "test", Options{Embedded: true, Size: 14, ResizeMethod: "cubic"}); err == nil {
		t.Error("unknown ResizeMethod accepted")
	}
	crop, err := CenterCrop(im0(t), 20, 20)
	if err != nil {
		t.Fatal(err)
	}
	small, err := Resize(crop, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	r = small.Resampling
	if r.CropWidth != 20 || r.StoredWidth != 28 || r.Method != pixels.Area || r.Width != 10 {
		t.Errorf("crop and resize: %+v", r)
	}
	if s := r.String(); !strings.Contains(s, "centre crop 20x20") || !strings.Contains(s, "by area") {
		t.Errorf("String: %q", s)
	}
}

func im0(t *testing.T) *Images {
	t.Helper()
	im, err := Load("mnist", "test", Options{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func TestSameResampling(t *testing.T) {
	native := Resampling{StoredWidth: 32, StoredHeight: 32, Width: 32, Height: 32}
	celebA := Resampling{StoredWidth: 89, StoredHeight: 109, CropWidth: 74, CropHeight: 74, Method: "area", Width: 32, Height: 32}
	for i, tc := range []struct {
		a, b Resampling
		same bool
	}{
		{native, native, true},  // 0
		{native, celebA, false}, // 1
		{celebA, celebA, true},  // 2
		{celebA, func() Resampling { r := celebA; r.Method = "nearest"; return r }(), false},                   // 3
		{celebA, Resampling{StoredWidth: 148, StoredHeight: 148, Method: "area", Width: 64, Height: 64}, true}, // 4: same factor
	} {
		if got := SameResampling(tc.a, tc.b); got != tc.same {
			t.Errorf("%d: SameResampling = %v, want %v", i, got, tc.same)
		}
	}
}
