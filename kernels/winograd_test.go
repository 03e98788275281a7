package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/flowood/flowood/kernels/internal/winomat"
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

// refMats returns the float64 input-transform, output-transform and
// gradient-transform matrices (Bᵀ, Aᵀ, A) of tile size m.
func refMats(m int) (bt, at, a [][]float64) {
	if m == 2 {
		return refBT, refAT, refA
	}
	conv := func(x [][]int) [][]float64 {
		out := make([][]float64, len(x))
		for i, row := range x {
			for _, v := range row {
				out[i] = append(out[i], float64(v))
			}
		}
		return out
	}
	return conv(winomat.BT), conv(winomat.AT), conv(winomat.Transpose(winomat.AT))
}

// winoCase is a batch of images, a tile size and a range of its tiles.
type winoCase struct{ n, h, w, m, c, t0, t1 int }

func (k winoCase) tiles() WinogradTiles { return WinogradTiles{N: k.n, H: k.h, W: k.w, M: k.m} }

// winoCases draws image shapes (odd and even sides, single pixels),
// channel counts around the 16-value unit, and tile ranges, including
// the whole batch, for tile size m.
func winoCases(rng *rand.Rand, m int) []winoCase {
	var cs []winoCase
	for _, c := range elemChannels {
		// Up to 17 wide: F(4x4)'s input runs of more than one tile need
		// 13 columns or more.
		n, h, w := 1+rng.IntN(3), 1+rng.IntN(17), 1+rng.IntN(17)
		g := WinogradTiles{N: n, H: h, W: w, M: m}
		t0 := rng.IntN(g.Count())
		cs = append(cs, winoCase{n, h, w, m, c, 0, g.Count()}, winoCase{n, h, w, m, c, t0, t0 + 1 + rng.IntN(g.Count()-t0)})
	}
	// The st-networks' shapes, runs of whole tile rows included.
	for _, c := range []int{16, 17} {
		side := 14
		if m == 4 {
			side = 28
		}
		g := WinogradTiles{N: 2, H: side, W: side, M: m}
		cs = append(cs, winoCase{2, side, side, m, c, 0, g.Count()}, winoCase{2, side, side, m, c, 3, g.Count() - 5})
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
	g := k.tiles()
	img := k.n * k.h * k.w * k.c
	stride = (k.t1-k.t0)*k.c + rng.IntN(3)
	bufLen := (g.Positions()-1)*stride + (k.t1-k.t0)*k.c
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

// TestWinogradTiles checks the three tile transforms of WinogradTiles,
// for tiles of 2 and 4, against float64 matrix products on every tile of a
// range, that Output leaves the pixels of other tiles alone, and that
// every kernel set gives the same bits as the Go code, special values
// included.
func TestWinogradTiles(t *testing.T) {
	for _, m := range []int{2, 4} {
		rng := rand.New(rand.NewPCG(1, uint64(m)))
		bt, at, a := refMats(m)
		for _, kind := range []string{"input", "output", "output-add", "grad"} {
			for _, k := range winoCases(rng, m) {
				g := k.tiles()
				name := fmt.Sprintf("F(%d) %s %dx%dx%dx%d tiles [%d,%d)", m, kind, k.n, k.h, k.w, k.c, k.t0, k.t1)
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
					for ch := 0; ch < k.c && kind != "output" && kind != "output-add"; ch++ {
						var x []float64
						l := bt
						if kind == "input" {
							for i := 0; i < m+2; i++ {
								for j := 0; j < m+2; j++ {
									x = append(x, pix(n, oh-1+i, ow-1+j, ch))
								}
							}
						} else {
							for i := 0; i < m; i++ {
								for j := 0; j < m; j++ {
									x = append(x, pix(n, oh+i, ow+j, ch))
								}
							}
							l = a
						}
						want, scale := refTransform(l, x)
						for xi := range want {
							v := got[xi*stride+o+ch]
							if d := math.Abs(float64(v) - want[xi]); d > 1e-6*scale[xi] {
								t.Fatalf("%s: tile %d position %d channel %d = %v, want %v", name, tl, xi, ch, v, want[xi])
							}
						}
					}
				}
				if kind == "output" || kind == "output-add" {
					checkWinoOutput(t, name, g, k, at, in, got, stride)
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
}

// checkWinoOutput checks the images y that Output wrote from the products
// m against float64 references: pixels of tiles in the range hold
// Aᵀ M A (plus their old value for output-add), the others keep theirs.
func checkWinoOutput(t *testing.T, name string, g WinogradTiles, k winoCase, at [][]float64, m, y []float32, stride int) {
	t.Helper()
	// Regenerate the images as they were before the call.
	rng := rand.New(rand.NewPCG(3, uint64(k.c)))
	img := k.n * k.h * k.w * k.c
	_ = rng.IntN(3)
	_ = randFloats(rng, (g.Positions()-1)*stride+(k.t1-k.t0)*k.c, false)
	y0 := randFloats(rng, img, false)
	written := make([]bool, len(y))
	add := strings.Contains(name, "output-add")
	for tl := k.t0; tl < k.t1; tl++ {
		n, oh, ow := g.origin(tl)
		o := (tl - k.t0) * k.c
		for ch := 0; ch < k.c; ch++ {
			x := make([]float64, g.Positions())
			for xi := range x {
				x[xi] = float64(m[xi*stride+o+ch])
			}
			want, scale := refTransform(at, x)
			for i := 0; i < k.m; i++ {
				for j := 0; j < k.m; j++ {
					if oh+i >= k.h || ow+j >= k.w {
						continue
					}
					p := ((n*k.h+oh+i)*k.w+ow+j)*k.c + ch
					w, s := want[k.m*i+j], scale[k.m*i+j]
					if add {
						w += float64(y0[p])
						s += math.Abs(float64(y0[p]))
					}
					if d := math.Abs(float64(y[p]) - w); d > 1e-6*s {
						t.Fatalf("%s: tile %d output (%d,%d) channel %d = %v, want %v", name, tl, i, j, ch, y[p], w)
					}
					written[p] = true
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
	g := WinogradTiles{N: 2, H: 5, W: 4}
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
