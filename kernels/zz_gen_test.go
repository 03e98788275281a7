package kernels

import (
	"math/rand/v2"
	"testing"
)

func kern4x4b(kc int, a []float32, b, c []float32, ldc int) {
	var c00, c01, c02, c03 float32
	var c10, c11, c12, c13 float32
	var c20, c21, c22, c23 float32
	var c30, c31, c32, c33 float32
	a = a[:kc*4]
	b = b[:kc*4]
	for p := 0; p < len(a); p += 4 {
		aa := a[p : p+4 : p+4]
		bb := b[p : p+4 : p+4]
		a0, a1, a2, a3 := aa[0], aa[1], aa[2], aa[3]
		b0 := bb[0]
		c00 += a0 * b0
		c10 += a1 * b0
		c20 += a2 * b0
		c30 += a3 * b0
		b1 := bb[1]
		c01 += a0 * b1
		c11 += a1 * b1
		c21 += a2 * b1
		c31 += a3 * b1
		b2 := bb[2]
		c02 += a0 * b2
		c12 += a1 * b2
		c22 += a2 * b2
		c32 += a3 * b2
		b3 := bb[3]
		c03 += a0 * b3
		c13 += a1 * b3
		c23 += a2 * b3
		c33 += a3 * b3
	}
	c[0], c[1], c[2], c[3] = c00, c01, c02, c03
	c[4], c[5], c[6], c[7] = c10, c11, c12, c13
	c[8], c[9], c[10], c[11] = c20, c21, c22, c23
	c[12], c[13], c[14], c[15] = c30, c31, c32, c33
}

func kern4x2(kc int, a []float32, b, c []float32, ldc int) {
	var c00, c01 float32
	var c10, c11 float32
	var c20, c21 float32
	var c30, c31 float32
	a = a[:kc*4]
	b = b[:kc*2]
	for p := 0; p < kc; p++ {
		aa := a[p*4 : p*4+4 : p*4+4]
		bb := b[p*2 : p*2+2 : p*2+2]
		b0, b1 := bb[0], bb[1]
		a0 := aa[0]
		c00 += a0 * b0
		c01 += a0 * b1
		a1 := aa[1]
		c10 += a1 * b0
		c11 += a1 * b1
		a2 := aa[2]
		c20 += a2 * b0
		c21 += a2 * b1
		a3 := aa[3]
		c30 += a3 * b0
		c31 += a3 * b1
	}
	c[0], c[1], c[2], c[3] = c00, c01, c10, c11
	c[4], c[5], c[6], c[7] = c20, c21, c30, c31
}

func BenchmarkZZGen(b *testing.B) {
	rng := rand.New(rand.NewPCG(2, 2))
	a := randSlice(rng, 256*4)
	bp := randSlice(rng, 256*4)
	c := make([]float32, 16)
	b.Run("4x4cur", func(b *testing.B) {
		for b.Loop() {
			kernGeneric4x4(256, a, 1, 4, bp, c, 4, 1, 0)
		}
		b.ReportMetric(2*16*256*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("4x4b", func(b *testing.B) {
		for b.Loop() {
			kern4x4b(256, a, bp, c, 4)
		}
		b.ReportMetric(2*16*256*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
	b.Run("4x2", func(b *testing.B) {
		for b.Loop() {
			kern4x2(256, a, bp, c, 4)
		}
		b.ReportMetric(2*8*256*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
