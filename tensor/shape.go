package tensor

import (
	"fmt"
	"unsafe"
)

// Reshape returns a tensor with the same data and a new shape; one
// dimension may be -1 to be inferred.
func Reshape(x *Tensor, shape ...int) *Tensor {
	shape = append([]int(nil), shape...)
	infer, known := -1, 1
	for i, d := range shape {
		if d == -1 {
			infer = i
		} else {
			known *= d
		}
	}
	if infer >= 0 && known > 0 {
		shape[infer] = len(x.Data) / known
	}
	if Numel(shape) != len(x.Data) {
		panic(fmt.Sprintf("tensor: Reshape of %v to %v", x.Shape, shape))
	}
	out := view(x, shape, x.pass)
	record(out, func() { addGrad(x, out.Grad) }, x)
	return out
}

// Concat joins tensors along their last dimension; all other dimensions
// must agree.
func Concat(xs ...*Tensor) *Tensor {
	p := passOf(xs...)
	lead := xs[0].Shape[:len(xs[0].Shape)-1]
	widths := make([]int, len(xs))
	total := 0
	for i, x := range xs {
		if !SameShape(x.Shape[:len(x.Shape)-1], lead) {
			panic(fmt.Sprintf("tensor: Concat of %v and %v", xs[0].Shape, x.Shape))
		}
		widths[i] = x.Dim(-1)
		total += widths[i]
	}
	rows := Numel(lead)
	shape := append(append([]int(nil), lead...), total)
	out := newOut(p, shape)
	p.par().ParallelFor(rows, grain/total+1, func(lo, hi int) {
		off := 0
		for i, x := range xs {
			w := widths[i]
			copyColumns(out.Data[lo*total:hi*total], total, off, x.Data[lo*w:hi*w], w, 0, w)
			off += w
		}
	})
	record(out, func() {
		off := 0
		for i, x := range xs {
			w, o := widths[i], off
			off += w
			if !needs(x) {
				continue
			}
			g := x.grad()
			p.par().ParallelFor(rows, grain/total+1, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					dst, src := g[r*w:(r+1)*w], out.Grad[r*total+o:r*total+o+w]
					for j := range dst {
						dst[j] += src[j]
					}
				}
			})
		}
	}, xs...)
	return out
}

// Slice returns x[..., lo:hi] along the last dimension.
func Slice(x *Tensor, lo, hi int) *Tensor {
	p := passOf(x)
	c := x.Dim(-1)
	if lo < 0 || hi > c || lo > hi {
		panic(fmt.Sprintf("tensor: Slice [%d:%d] of %v", lo, hi, x.Shape))
	}
	w := hi - lo
	rows := len(x.Data) / c
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), w)
	out := newOut(p, shape)
	p.par().ParallelFor(rows, grain/c+1, func(a, b int) {
		copyColumns(out.Data[a*w:b*w], w, 0, x.Data[a*c:b*c], c, lo, w)
	})
	record(out, func() {
		g := x.grad()
		p.par().ParallelFor(rows, grain/c+1, func(a, b int) {
			for r := a; r < b; r++ {
				dst, src := g[r*c+lo:r*c+hi], out.Grad[r*w:(r+1)*w]
				for j := range dst {
					dst[j] += src[j]
				}
			}
		})
	}, x)
	return out
}

// Split returns x[..., :k] and x[..., k:] along the last dimension.
func Split(x *Tensor, k int) (*Tensor, *Tensor) {
	return Slice(x, 0, k), Slice(x, k, x.Dim(-1))
}

// squeezeIndex maps (h, w, c) of an [H, W, C] image to the offset of its
// element in the squeezed [H/2, W/2, 4C] image: channel c*4 + 2*(h%2) + w%2
// at (h/2, w/2), as in the RealNVP reference code.
func squeezeIndex(h, w, c, W, C int) int {
	return ((h/2)*(W/2)+w/2)*4*C + c*4 + 2*(h%2) + w%2
}

// permute moves x's data through the per-example index map dst[perm[i]] =
// src[i]; inverse selects the opposite direction.
func permute(x *Tensor, shape []int, perm []int32, inverse bool) *Tensor {
	p := passOf(x)
	n := x.Shape[0]
	d := len(perm)
	out := newOut(p, shape)
	// move sets (accum false) or adds dst[perm[i]] = src[i] (inv false) or
	// dst[i] = src[perm[i]] (inv true) per example.
	move := func(dst, src []float32, inv, accum bool) {
		p.par().ParallelFor(n, 1, func(lo, hi int) {
			for e := lo; e < hi; e++ {
				ds, ss := dst[e*d:(e+1)*d], src[e*d:(e+1)*d]
				switch {
				case inv && accum:
					for i, p := range perm {
						ds[i] += ss[p]
					}
				case inv:
					for i, p := range perm {
						ds[i] = ss[p]
					}
				case accum:
					for i, p := range perm {
						ds[p] += ss[i]
					}
				default:
					for i, p := range perm {
						ds[p] = ss[i]
					}
				}
			}
		})
	}
	move(out.Data, x.Data, inverse, false)
	record(out, func() { move(x.grad(), out.Grad, !inverse, true) }, x)
	return out
}

func squeezePerm(H, W, C int) []int32 {
	perm := make([]int32, H*W*C)
	for h := 0; h < H; h++ {
		for w := 0; w < W; w++ {
			for c := 0; c < C; c++ {
				perm[(h*W+w)*C+c] = int32(squeezeIndex(h, w, c, W, C))
			}
		}
	}
	return perm
}

// Squeeze2x2 turns each 2x2 spatial block into channels: [N, H, W, C] ->
// [N, H/2, W/2, 4C], with input (h, w, c) going to channel
// 4c + 2(h mod 2) + (w mod 2). H and W must be even.
func Squeeze2x2(x *Tensor) *Tensor {
	N, H, W, C := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	if H%2 != 0 || W%2 != 0 {
		panic(fmt.Sprintf("tensor: Squeeze2x2 of odd spatial shape %v", x.Shape))
	}
	return permute(x, []int{N, H / 2, W / 2, 4 * C}, squeezePerm(H, W, C), false)
}

// Unsqueeze2x2 inverts Squeeze2x2: [N, H, W, 4C] -> [N, 2H, 2W, C].
func Unsqueeze2x2(x *Tensor) *Tensor {
	N, H, W, C4 := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	if C4%4 != 0 {
		panic(fmt.Sprintf("tensor: Unsqueeze2x2 of %v: channels not a multiple of 4", x.Shape))
	}
	return permute(x, []int{N, 2 * H, 2 * W, C4 / 4}, squeezePerm(2*H, 2*W, C4/4), true)
}

// copyColumns copies columns [so, so+w) of the rows of src, sw values
// wide, to columns [do, do+w) of the rows of dst, dw values wide, for as
// many rows as src holds. Channel slicing and concatenation copy rows of
// a few values each (2 of 4 channels in the channel-wise couplings),
// where a bounds-checked copy per row cost more than the copying: rows
// of 1, 2 and 4 values are moved as arrays after a single bounds check.
func copyColumns(dst []float32, dw, do int, src []float32, sw, so, w int) {
	if w == 0 || sw == 0 {
		return
	}
	rows := len(src) / sw
	if rows == 0 {
		return
	}
	if so < 0 || do < 0 || so+w > sw || do+w > dw || len(dst) < rows*dw {
		panic(fmt.Sprintf("tensor: copyColumns of %d values at %d of %d into %d of %d", w, so, sw, do, dw))
	}
	d := unsafe.Pointer(&dst[do])
	s := unsafe.Pointer(&src[so])
	ds, ss := 4*dw, 4*sw
	switch w {
	case 1:
		for r := range rows {
			*(*[1]float32)(unsafe.Add(d, r*ds)) = *(*[1]float32)(unsafe.Add(s, r*ss))
		}
	case 2:
		for r := range rows {
			*(*[2]float32)(unsafe.Add(d, r*ds)) = *(*[2]float32)(unsafe.Add(s, r*ss))
		}
	case 4:
		for r := range rows {
			*(*[4]float32)(unsafe.Add(d, r*ds)) = *(*[4]float32)(unsafe.Add(s, r*ss))
		}
	default:
		for r := range rows {
			copy(dst[r*dw+do:r*dw+do+w], src[r*sw+so:r*sw+so+w])
		}
	}
}
