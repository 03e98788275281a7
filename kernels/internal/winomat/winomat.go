// Package winomat holds the transform matrices of Winograd's F(4x4, 3x3)
// (Lavin and Gray 2016, interpolation points 0, ±1, ±2 and infinity),
// shared by package kernels and the generator of its assembly, so that
// both compute with the same coefficients.
package winomat

// BT is Bᵀ, the 6x6 input transform.
var BT = [][]int{
	{4, 0, -5, 0, 1, 0},
	{0, -4, -4, 1, 1, 0},
	{0, 4, -4, -1, 1, 0},
	{0, -2, -1, 2, 1, 0},
	{0, 2, -1, -2, 1, 0},
	{0, 4, 0, -5, 0, 1},
}

// AT is Aᵀ, the 4x6 output transform.
var AT = [][]int{
	{1, 1, 1, 1, 1, 0},
	{0, 1, -1, 2, -2, 0},
	{0, 1, 1, 4, 4, 0},
	{0, 1, -1, 8, -8, 1},
}

// Transpose returns the transpose of m.
func Transpose(m [][]int) [][]int {
	t := make([][]int, len(m[0]))
	for j := range t {
		t[j] = make([]int, len(m))
		for i := range m {
			t[j][i] = m[i][j]
		}
	}
	return t
}
