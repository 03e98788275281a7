package tensor

import (
	"fmt"
	"math"
	"testing"
)

// TestCouplingAffine checks CouplingAffine bit for bit against the
// separate operations it stands for, with and without a mask, for 1 to 3
// channels, and raw scales large enough to saturate tanh.
func TestCouplingAffine(t *testing.T) {
	rng := gcRNG(91)
	for _, c := range []int{1, 2, 3} {
		for _, masked := range []bool{false, true} {
			name := fmt.Sprintf("C=%d masked=%v", c, masked)
			x := normal(rng, 0, 2, 3, 5, 4, c)
			st := normal(rng, 0, 3, 3, 5, 4, 2*c)
			scale := param(normal(rng, 1, 0.5, c))
			var mask *Tensor
			if masked {
				mask = New(5, 4, c)
				for i := range mask.Data {
					mask.Data[i] = float32(i % 2)
				}
			}
			// The separate operations, as bijector.AffineCoupling uses them.
			raw, tt := Split(st, c)
			s := MulChannel(Tanh(raw), scale)
			if mask != nil {
				s, tt = MulExample(s, mask), MulExample(tt, mask)
			}
			wantZ := Mul(Add(x, tt), Exp(s))
			wantLD := SumPerExample(s)
			var z, ld *Tensor
			p := GradFree()
			z, ld = CouplingAffine(p.Input(x), st, scale, mask)
			for i := range wantZ.Data {
				if math.Float32bits(z.Data[i]) != math.Float32bits(wantZ.Data[i]) {
					t.Fatalf("%s: z[%d] = %v, separate operations %v", name, i, z.Data[i], wantZ.Data[i])
				}
			}
			for i := range wantLD.Data {
				if math.Float32bits(ld.Data[i]) != math.Float32bits(wantLD.Data[i]) {
					t.Fatalf("%s: ld[%d] = %v, separate operations %v", name, i, ld.Data[i], wantLD.Data[i])
				}
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("CouplingAffine accepted a parameter while recording gradients")
		}
	}()
	CouplingAffine(New(1, 2, 1), New(1, 2, 2), param(New(1)), nil)
}
