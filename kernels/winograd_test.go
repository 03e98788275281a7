package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Winograd F(2x2, 3x3) transform matrices, as float64 references: Bᵀ and
// A (4x2; Aᵀ is its transpose).
var (
	refBT = [][]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}
	refA  = [][]float64{{1, 0}, {1, 1}, {1, -1}, {0, -1}}
	refAT = [][]float64{{1, 1, 1, 0}, {0, 1, -1, -1}}
)

// refTransform returns L·X·Lᵀ for a square tile x (row-major, as wide as
// L), and the same product of absolute values, the scale of rounding
// errors.
func refTransform(l [][]float64, x []float64) (out, scale []float64) {
	w := len(l[0])
	for i := range l {
		for j := range l {
			var s, a float64
			for u := 0; u < w; u++ {
				for v := 0; v < w; v++ {
					p := l[i][u] * x[u*w+v] * l[j][v]
					s, a = s+p, a+math.Abs(p)
				}
			}
			out, scale = append(out, s), append(scale, a)
		}
	}
	return out, scale
}

// winoCase is a batch of images and a range of its tiles.
type winoCase struct{ n, h, w, c, t0, t1 int }

// winoCases draws image shapes (odd and even sides, single pixels),
// channel counts around the 16-value unit, and tile ranges, including
// the whole batch.
func winoCases(rng *rand.Rand) []winoCase {
	var cs []winoCase
	for _, c := range elemChannels {
		n, h, w := 1+rng.IntN(3), 1+rng.IntN(7), 1+rng.IntN(7)
		g := WinogradTiles{n, h, w}
		t0 := rng.IntN(g.Count())
		cs = append(cs, winoCase{n, h, w, c, 0, g.Count()}, winoCase{n, h, w, c, t0, t0 + 1 + rng.IntN(g.Count()-t0)})
	}
	return cs
}

// randFloats returns n normal values, some special when specials is set.
func randFloats(rng *rand.Rand, n int, specials bool) []float32 {
	return elemInput(rng, n, 0, specials)
}

// runWino runs one transform on inputs drawn from seed and returns the
// inputs and the output buffer.
func runWino(kind string, k winoCase, seed uint64, specials bool) (in, out []float32, stride int) {
	rng := rand.New(rand.NewPCG(seed, uint64(k.c)))
	g := WinogradTiles{k.n, k.h, k.w}
	img := k.n * k.h * k.w * k.c
	stride = (k.t1-k.t0)*k.c + rng.IntN(3)
	bufLen := 15*stride + (k.t1-k.t0)*k.c
	switch kind {
	case "input":
		in, out = randFloats(rng, img, specials), randFloats(rng, bufLen, false)
		g.Input(out, stride, in, k.c, k.t0, k.t1)
	case "grad":
		in, out = randFloats(rng, img, specials), randFloats(rng, bufLen, false)
		g.Grad(out, stride, in, k.c, k.t0, k.t1)
	default:
		in, out = randFloats(rng, bufLen, specials), randFloats(rng, img, false)
		g.Output(out, in, stride, k.c, k.t0, k.t1, kind == "output-add")
	}
	return in, out, stride
}

// TestWinogradTiles checks the three tile transforms of WinogradTiles
// against float64 matrix products on every tile of a range, that Output
// leaves the pixels of other tiles alone, and that every kernel set gives
// the same bits as the Go code, special values included.
func TestWinogradTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []string{"input", "output", "output-add", "grad"} {
		for _, k := range winoCases(rng) {
			g := WinogradTiles{k.n, k.h, k.w}
			name := fmt.Sprintf("%s %dx%dx%dx%d tiles [%d,%d)", kind, k.n, k.h, k.w, k.c, k.t0, k.t1)
			in, got, stride := runWino(kind, k, 3, false)
			pix := func(n, i, j, ch int) float64 {
				if i < 0 || i >= k.h || j < 0 || j >= k.w {
					return 0
				}
				return float64(in[((n*k.h+i)*k.w+j)*k.c+ch])
			}
			for tl := k.t0; tl < k.t1; tl++ {
				n, oh, ow := g.origin(tl)
				o := (tl - k.t0) * k.c
				for ch := 0; ch < k.c; ch++ {
					switch kind {
					case "input", "grad":
						var x []float64
						l := refBT
						if kind == "input" {
							for a := 0; a < 4; a++ {
								for b := 0; b < 4; b++ {
									x = append(x, pix(n, oh-1+a, ow-1+b, ch))
								}
							}
						} else {
							for a := 0; a < 2; a++ {
								for b := 0; b < 2; b++ {
									x = append(x, pix(n, oh+a, ow+b, ch))
								}
							}
							l = refA
						}
						want, scale := refTransform(l, x)
						for xi := range want {
							v := got[xi*stride+o+ch]
							if d := math.Abs(float64(v) - want[xi]); d > 4e-7*scale[xi] {
								t.Fatalf("%s: tile %d position %d channel %d = %v, want %v", name, tl, xi, ch, v, want[xi])
							}
						}
					}
				}
			}
			if kind == "output" || kind == "output-add" {
				checkWinoOutput(t, name, g, k, in, got, stride)
			}
			// Every kernel set gives the Go code's bits.
			SetMicroKernel("generic")
			_, want, _ := runWino(kind, k, 4, true)
			SetMicroKernel("auto")
			forEachElemKernel(t, func(t *testing.T) {
				_, got, _ := runWino(kind, k, 4, true)
				checkSame(t, name, got, want)
			})
		}
	}
}

// checkWinoOutput checks the images y that Output wrote from the products
// m against float64 references: pixels of tiles in the range hold
// Aᵀ M A (plus their old value for output-add), the others keep theirs.
func checkWinoOutput(t *testing.T, name string, g WinogradTiles, k winoCase, m, y []float32, stride int) {
	t.Helper()
	// Regenerate the images as they were before the call.
	rng := rand.New(rand.NewPCG(3, uint64(k.c)))
	img := k.n * k.h * k.w * k.c
	_ = rng.IntN(3)
	_ = randFloats(rng, 15*stride+(k.t1-k.t0)*k.c, false)
	y0 := randFloats(rng, img, false)
	written := make([]bool, len(y))
	for tl := k.t0; tl < k.t1; tl++ {
		n, oh, ow := g.origin(tl)
		o := (tl - k.t0) * k.c
		for ch := 0; ch < k.c; ch++ {
			x := make([]float64, 16)
			for xi := range x {
				x[xi] = float64(m[xi*stride+o+ch])
			}
			want, scale := refTransform(refAT, x)
			for a := 0; a < 2; a++ {
				for b := 0; b < 2; b++ {
					if oh+a >= k.h || ow+b >= k.w {
						continue
					}
					i := ((n*k.h+oh+a)*k.w+ow+b)*k.c + ch
					w, s := want[2*a+b], scale[2*a+b]
					if name[:10] == "output-add" {
						w += float64(y0[i])
						s += math.Abs(float64(y0[i]))
					}
					if d := math.Abs(float64(y[i]) - w); d > 4e-7*s {
						t.Fatalf("%s: tile %d output (%d,%d) channel %d = %v, want %v", name, tl, a, b, ch, y[i], w)
					}
					written[i] = true
				}
			}
		}
	}
	for i := range y {
		if !written[i] && !sameBits(y[i], y0[i]) {
			t.Fatalf("%s: value %d outside the tiles changed from %v to %v", name, i, y0[i], y[i])
		}
	}
}

// TestWinogradTilesPanics checks that short buffers and bad ranges panic
// with a kernels: message instead of being read or written past their end.
func TestWinogradTilesPanics(t *testing.T) {
	g := WinogradTiles{2, 5, 4}
	img := make([]float32, 2*5*4*16)
	buf := make([]float32, 16*g.Count()*16)
	cases := map[string]func(){
		"short image":  func() { g.Input(buf, g.Count()*16, img[:len(img)-1], 16, 0, g.Count()) },
		"short buffer": func() { g.Output(img, buf[:len(buf)-1], g.Count()*16, 16, 0, g.Count(), false) },
		"small stride": func() { g.Grad(buf, g.Count()*16-1, img, 16, 0, g.Count()) },
		"range":        func() { g.Input(buf, g.Count()*16, img, 16, 1, g.Count()+1) },
		"no channels":  func() { g.Input(buf, 0, img, 0, 0, 1) },
	}
	// Empty ranges touch nothing, even with empty buffers.
	g.Input(nil, 0, img, 16, 3, 3)
	g.Output(img, nil, 0, 16, 3, 3, true)
	g.Grad(nil, 0, img, 16, 3, 3)
	for name, f := range cases {
		func() {
			defer func() {
				if r := recover(); r == nil || fmt.Sprint(r)[:8] != "kernels:" {
					t.Errorf("%s: recovered %v, want a kernels: panic", name, r)
				}
			}()
			f()
		}()
	}
}
