package data

import (
	"math/rand/v2"
	"slices"
	"strings"
)

// Images and Tabular are the two kinds of examples a model trains on and
// is scored on (datakind.Examples): Read gives a model's inputs, dequantised
// for images and as they are for tables.

// Len returns N, the number of images.
func (im *Images) Len() int { return im.N }

// Shape returns the shape of one image, [H, W, C].
func (im *Images) Shape() []int { return []int{im.H, im.W, im.C} }

// Read writes the dequantised pixels u = (x + ε)/256 of the images idx, in
// that order, into dst (len(idx)*Dim() values), drawing ε ~ U[0, 1) from
// rng value by value (see Dequantize; ε = 1/2 where rng is nil). It
// panics if an index is out of range or dst is too short.
func (im *Images) Read(dst []float32, idx []int, rng *rand.Rand) {
	d := im.Dim()
	for i, j := range idx {
		Dequantize(dst[i*d:(i+1)*d], im.Image(j), rng)
	}
}

// Label returns the set's name and split, such as "fashionmnist test".
func (im *Images) Label() string { return label(im.Name, im.Split) }

// Len returns N, the number of rows.
func (t *Tabular) Len() int { return t.N }

// Shape returns the shape of one row, [D].
func (t *Tabular) Shape() []int { return []int{t.D} }

// Read writes the rows idx, in that order, into dst (len(idx)*D values),
// converted to float32; tables are not dequantised, and rng is unused.
// It panics if an index is out of range or dst is too short.
func (t *Tabular) Read(dst []float32, idx []int, _ *rand.Rand) {
	for i, j := range idx {
		row := t.Row(j)
		out := dst[i*t.D : (i+1)*t.D]
		for k, v := range row {
			out[k] = float32(v)
		}
	}
}

// Label returns the table's name and split, such as "miniboone test".
func (t *Tabular) Label() string { return label(t.Name, t.Split) }

func label(name, split string) string {
	return strings.TrimSpace(name + " " + split)
}

// SampleIndices returns n distinct indices in [0, total), ascending,
// drawn uniformly at random with seed: the first n of a permutation of
// 0..total-1 made by math/rand/v2's Perm with the generator
// rand.New(rand.NewPCG(seed, 0x5eb5e7)), then sorted. With n >= total it
// returns 0..total-1; n <= 0 gives none. The same seed, total and n give
// the same indices on every machine, and the subset for a smaller n is
// part of the one for a larger n (both come from one permutation).
func SampleIndices(total, n int, seed uint64) []int {
	if n <= 0 || total <= 0 {
		return nil
	}
	if n >= total {
		idx := make([]int, total)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	idx := rand.New(rand.NewPCG(seed, 0x5eb5e7)).Perm(total)[:n]
	slices.Sort(idx)
	return idx
}
