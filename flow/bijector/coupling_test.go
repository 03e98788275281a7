package bijector_test

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowood/flowood/flow/bijector"
	"github.com/flowood/flowood/flow/mask"
	"github.com/flowood/flowood/flowtest"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// bitmapFile writes an h x w PNG whose light pixels are those with
// (3i + j) % 5 < 2, and returns its path.
func bitmapFile(t *testing.T, h, w int) string {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := 0; i < h; i++ {
		for j := 0; j < w; j++ {
			if (3*i+j)%5 < 2 {
				img.SetGray(j, i, color.Gray{Y: 255})
			}
		}
	}
	path := filepath.Join(t.TempDir(), "mask.png")
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
	return path
}

// pairCoupling returns a coupling of mask pair p with a perturbed
// weight-normalised st-network (bottleneck l when positive), with softplus
// activations when smooth is set (so that finite differences of the
// parameter gradients cross no ReLU kink; ReLU couplings are checked by
// TestContract and TestFusedBits).
func pairCoupling(rng *tensor.RNG, mode *nn.Mode, p mask.Pair, l int, smooth bool) *bijector.AffineCoupling {
	h, w, c := p.Cond.Shape[0], p.Cond.Shape[1], p.Cond.Shape[2]
	opt := nn.ResNetOptions{WeightNorm: true}
	if l > 0 {
		opt.Bottleneck, opt.Height, opt.Width = l, h, w
	}
	net := nn.NewResNet(rng, c, 4, 2*c, 1, true, mode, opt)
	if smooth {
		net.Act = tensor.Softplus
	}
	cp := bijector.NewAffineCouplingPair(p, net)
	flowtest.Perturb(cp, rng, 0.1)
	return cp
}

// TestCouplingMasks runs the bijector contract on a coupling with every
// mask of every named sequence (all four cycle couplings), a bitmap, and
// a bottleneck st-network.
func TestCouplingMasks(t *testing.T) {
	rng := tensor.NewRNG(2)
	const n, h, w, c = 2, 4, 4, 2
	mode := &nn.Mode{}
	names := append(append([]string(nil), mask.Names...), "bitmap:"+bitmapFile(t, h, w))
	for _, name := range names {
		s, err := mask.Parse(name)
		if err != nil {
			t.Fatal(err)
		}
		for k := 0; k < s.Period(); k++ {
			p, err := s.Pair(k, h, w, c)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(fmt.Sprintf("%s/%d", s.Name, k), func(t *testing.T) {
				cp := pairCoupling(rng, mode, p, 0, true)
				x := tensor.Randn(rng, n, h, w, c)
				warm(cp, mode, x)
				flowtest.CheckBijector(t, cp, x, flowtest.Options{})
			})
		}
	}
	for _, name := range []string{"checkerboard", "cycle"} {
		t.Run("bottleneck/"+name, func(t *testing.T) {
			ps, err := mask.Sequence(name, 1, h, w, c)
			if err != nil {
				t.Fatal(err)
			}
			cp := pairCoupling(rng, mode, ps[0], 3, true)
			x := tensor.Randn(rng, n, h, w, c)
			warm(cp, mode, x)
			flowtest.CheckBijector(t, cp, x, flowtest.Options{})
		})
	}
}

// TestCycleJacobian checks the cycle mask's structure on a brute-force
// Jacobian (finite differences of the gradient-free Forward): for coupling
// k, the outputs in quadrant k+1 depend on the inputs of quadrants k and
// k+1 only, and every other output is its input (Jacobian rows of the
// identity).
func TestCycleJacobian(t *testing.T) {
	rng := tensor.NewRNG(3)
	const h, w, c = 4, 6, 2
	mode := &nn.Mode{}
	for k := 0; k < 4; k++ {
		ps, err := mask.Sequence("cycle", k+1, h, w, c)
		if err != nil {
			t.Fatal(err)
		}
		cp := pairCoupling(rng, mode, ps[k], 0, false)
		x := tensor.Randn(rng, 1, h, w, c)
		warm(cp, mode, x)
		forward := func(x *tensor.Tensor) []float32 {
			p := tensor.GradFree()
			defer p.Close()
			z, _ := cp.Forward(p.Input(x))
			return append([]float32(nil), z.Data...)
		}
		z0 := forward(x)
		quad := func(idx int) int { // quadrant of flat NHWC index idx
			pix := idx / c
			return mask.QuadrantOf(pix/w, pix%w, h, w)
		}
		from, to := k, (k+1)%4
		for i, v := range z0 {
			if quad(i) != to && v != x.Data[i] {
				t.Fatalf("k=%d: output %d (quadrant %d) is %v, its input %v", k, i, quad(i), v, x.Data[i])
			}
		}
		const eps = 1e-2
		seen := map[int]bool{} // input quadrants that moved a quadrant-`to` output
		for j := range x.Data {
			xp, xm := x.Clone(), x.Clone()
			xp.Data[j] += eps
			xm.Data[j] -= eps
			zp, zm := forward(xp), forward(xm)
			for i := range zp {
				d := (float64(zp[i]) - float64(zm[i])) / (2 * eps)
				switch {
				case quad(i) != to:
					want := 0.0
					if i == j {
						want = 1
					}
					if math.Abs(d-want) > 1e-3 {
						t.Errorf("k=%d: dz[%d]/dx[%d] = %g, want %g (quadrant %d passes through)", k, i, j, d, want, quad(i))
					}
				case quad(j) != from && quad(j) != to:
					if zp[i] != zm[i] {
						t.Errorf("k=%d: output %d (quadrant %d) moves with input %d of quadrant %d", k, i, to, j, quad(j))
					}
				case math.Abs(d) > 1e-4:
					seen[quad(j)] = true
				}
			}
		}
		if !seen[from] || !seen[to] {
			t.Errorf("k=%d: quadrant %d outputs depend on quadrants %v, want %d and %d", k, to, seen, from, to)
		}
	}
}

// TestFusedBits checks that the fused gradient-free Forward
// (tensor.CouplingAffine) gives the bits of the unfused one (taken when an
// observer is set) for every mask pair.
func TestFusedBits(t *testing.T) {
	rng := tensor.NewRNG(4)
	const n, h, w, c = 3, 4, 4, 2
	mode := &nn.Mode{}
	for _, name := range mask.Names {
		ps, err := mask.Sequence(name, 2, h, w, c)
		if err != nil {
			t.Fatal(err)
		}
		for k, p := range ps {
			cp := pairCoupling(rng, mode, p, 0, false)
			x := tensor.Randn(rng, n, h, w, c)
			warm(cp, mode, x)
			run := func() (z, ld []float32) {
				p := tensor.GradFree()
				defer p.Close()
				zz, ll := cp.Forward(p.Input(x))
				return append([]float32(nil), zz.Data...), append([]float32(nil), ll.Data...)
			}
			zf, ldf := run()
			cp.Observe = func(s, t, z *tensor.Tensor) {}
			zu, ldu := run()
			cp.Observe = nil
			if !flowtest.SameBits(zf, zu) || !flowtest.SameBits(ldf, ldu) {
				t.Errorf("%s coupling %d: fused and unfused Forward differ", name, k)
			}
		}
	}
}
