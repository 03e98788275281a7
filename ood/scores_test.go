package ood

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ulikunitz/xz/lzma"
)

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestScoresByHand(t *testing.T) {
	check := func(name string, got, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
		for i := range got {
			if !closeTo(got[i], want[i]) {
				t.Errorf("%s: %v, want %v", name, got, want)
				return
			}
		}
	}
	check("InputComplexity", InputComplexity([]float64{1, 2}, []float64{8, 0}), []float64{1 + 8*math.Ln2, 2})
	check("Typicality", Typicality([]float64{1, 5, 3}, 3), []float64{-2, -2, 0})
	// one batch of everything: |mean(1, 5, 6) - 3| = 1
	check("TypicalityBatch m=3", TypicalityBatch([]float64{1, 5, 6}, 3, 3, rand.New(rand.NewPCG(1, 2))), []float64{-1})
	// batches of 2 out of 5 values: two batches, the fifth value left out
	if b := TypicalityBatch([]float64{1, 1, 1, 1, 1}, 0, 2, rand.New(rand.NewPCG(1, 2))); len(b) != 2 || b[0] != -1 || b[1] != -1 {
		t.Errorf("TypicalityBatch of five ones in batches of 2: %v, want [-1 -1]", b)
	}
	// members (1, 3): mean 2, population variance 1; (2, 2): mean 2, variance 0
	check("WAIC", WAIC([][]float64{{1, 2}, {3, 2}}), []float64{1, 2})
	check("Ratio", Ratio([]float64{5, -1}, []float64{2, -3}), []float64{3, 2})
}

// TestCompressedBits checks each coder against what a lossless coder
// must do: its output decodes to the image (so the length counted is a
// real code's), uniform noise costs at least its entropy (8 bits a value,
// up to the header), and a smooth image far less.
func TestCompressedBits(t *testing.T) {
	const h, w = 28, 28
	r := rand.New(rand.NewPCG(3, 4))
	noise := make([]uint8, h*w)
	for i := range noise {
		noise[i] = uint8(r.IntN(256))
	}
	smooth := make([]uint8, h*w)
	for i := range smooth {
		smooth[i] = uint8(4 * (i % w))
	}
	for _, coder := range Compressors {
		bn, err := CompressedBits(noise, h, w, 1, coder)
		if err != nil {
			t.Fatal(err)
		}
		bs, err := CompressedBits(smooth, h, w, 1, coder)
		if err != nil {
			t.Fatal(err)
		}
		if bn < 8*h*w || bn > 8*h*w+8*200 {
			t.Errorf("%s: noise of %d bits coded in %v bits: a lossless coder needs at least that, plus a header", coder, 8*h*w, bn)
		}
		if bs > bn/4 {
			t.Errorf("%s: a smooth ramp costs %v bits, noise %v: the ramp should cost far less", coder, bs, bn)
		}
	}
	// png: the coded length is a PNG file's that decodes to the image
	var b bytes.Buffer
	(&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, &image.Gray{Pix: smooth, Stride: w, Rect: image.Rect(0, 0, w, h)})
	img, err := png.Decode(&b)
	if err != nil || !bytes.Equal(img.(*image.Gray).Pix, smooth) {
		t.Fatalf("PNG round trip: %v", err)
	}
	// lzma: decode the stream, undo the Paeth prediction, get the image.
	for _, px := range [][]uint8{noise, smooth} {
		res := paethResiduals(px, h, w, 1)
		var z bytes.Buffer
		wr, _ := lzma.WriterConfig{DictCap: lzma.MinDictCap, Matcher: lzma.HashTable4}.NewWriter(&z)
		wr.Write(res)
		wr.Close()
		bits, _ := CompressedBits(px, h, w, 1, "lzma")
		if float64(8*z.Len()) != bits {
			t.Errorf("lzma: CompressedBits %v, the stream is %d bits", bits, 8*z.Len())
		}
		rd, err := lzma.NewReader(&z)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rd)
		if err != nil || !bytes.Equal(got, res) {
			t.Fatalf("lzma round trip: %v", err)
		}
		if back := unpaeth(got, h, w); !bytes.Equal(back, px) {
			t.Errorf("Paeth residuals do not invert to the image")
		}
	}
	if _, err := CompressedBits(noise, h, w, 1, "gzip"); err == nil {
		t.Error("unknown coder accepted")
	}
}

// unpaeth inverts paethResiduals for one channel, written out directly
// from the PNG specification's reconstruction rule.
func unpaeth(res []uint8, h, w int) []uint8 {
	px := make([]uint8, len(res))
	get := func(i, j int) int {
		if i < 0 || j < 0 {
			return 0
		}
		return int(px[i*w+j])
	}
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			a, b, c := get(i, j-1), get(i-1, j), get(i-1, j-1)
			p := a + b - c
			pa, pb, pc := math.Abs(float64(p-a)), math.Abs(float64(p-b)), math.Abs(float64(p-c))
			pred := c
			if pa <= pb && pa <= pc {
				pred = a
			} else if pb <= pc {
				pred = b
			}
			px[i*w+j] = uint8(int(res[i*w+j]) + pred)
		}
	}
	return px
}

// TestDoSE checks the kernel densities against a direct float64 sum of
// Gaussian kernels, and that constant statistics are dropped.
func TestDoSE(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	a := []float64{0, 1, 2, 4}
	b := []float64{10, 10, 10, 10} // constant
	c := []float64{-1, 3, 3, 5}
	d, err := FitDoSE([]string{"a", "b", "c"}, [][]float64{a, b, c}, rng)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Names) != 2 || d.Names[0] != "a" || d.Names[1] != "c" {
		t.Fatalf("statistics kept %v, want [a c]", d.Names)
	}
	kde := func(ref []float64, x float64) float64 {
		n := float64(len(ref))
		var mean, sq float64
		for _, r := range ref {
			mean += r / n
		}
		for _, r := range ref {
			sq += (r - mean) * (r - mean)
		}
		h := 1.06 * math.Sqrt(sq/(n-1)) * math.Pow(n, -0.2)
		var s float64
		for _, r := range ref {
			s += math.Exp(-(x-r)*(x-r)/(2*h*h)) / (h * math.Sqrt(2*math.Pi))
		}
		return math.Log(s / n)
	}
	got := d.Score([][]float64{{0.5, 3}, {99, 99}, {2, 40}})
	for i, x := range [][2]float64{{0.5, 2}, {3, 40}} {
		want := kde(a, x[0]) + kde(c, x[1])
		if i == 1 {
			// 40 is far in c's tail, where the direct sum underflows to
			// zero; compare the term of a only, and that c's is very low.
			if d := got[1] - kde(a, 3); d > -100 || math.IsInf(d, 0) {
				t.Errorf("far tail: c's log-density %v, want finite and very low", d)
			}
			continue
		}
		if math.Abs(got[i]-want) > 1e-9*math.Abs(want) {
			t.Errorf("input %d: %v, want %v", i, got[i], want)
		}
	}
	if _, err := FitDoSE([]string{"b"}, [][]float64{b}, rng); err == nil {
		t.Error("DoSE of constant statistics only: no error")
	}

	// JSON: a decoded DoSE scores with the same bits and takes the same
	// statistics; inconsistent files are errors.
	j, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var back DoSE
	if err := json.Unmarshal(j, &back); err != nil {
		t.Fatal(err)
	}
	stats := [][]float64{{0.5, 3, -7}, {1, 2, 3}, {2, 40, 0.1}}
	for i, v := range back.Score(stats) {
		if w := d.Score(stats)[i]; math.Float64bits(v) != math.Float64bits(w) {
			t.Errorf("decoded DoSE, input %d: %v, fitted %v", i, v, w)
		}
	}
	if got := back.Statistics(); strings.Join(got, ",") != "a,b,c" {
		t.Errorf("decoded statistics %v, want [a b c]", got)
	}
	for _, bad := range []string{
		`{"statistics":["a"],"kept":["z"],"bandwidth":[1],"reference":[[0]]}`,
		`{"statistics":["a"],"kept":["a"],"bandwidth":[0],"reference":[[0]]}`,
		`{"statistics":["a"],"kept":["a"],"bandwidth":[1],"reference":[[]]}`,
		`{"statistics":["a"],"kept":["a"],"bandwidth":[1,2],"reference":[[0]]}`,
		`{"statistics":["a"],"kept":[],"bandwidth":[],"reference":[]}`,
	} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
