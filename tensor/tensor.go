package tensor

import (
	"fmt"
	"math"
)

// Tensor is a contiguous, row-major float32 array with an optional gradient.
// Data has exactly Numel(Shape) elements. Grad is nil until Backward reaches
// the tensor, then has the same length as Data.
type Tensor struct {
	Shape []int
	Data  []float32
	Grad  []float32

	requiresGrad bool
	node         *node
	// pass is the computation t belongs to (nil: the default pass).
	pass *Pass
	// buf is the pooled buffer t's data lies in, shared with the views of
	// t; nil for data the caller made (inputs, parameters).
	buf *buffer
	// constant marks a tensor Pass.Derived keeps for a pass, whose data
	// does not change while the pass is open (as a parameter's).
	constant bool
}

// Numel returns the number of elements of a tensor of the given shape.
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("tensor: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Tensor {
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, Numel(shape))}
}

// FromData wraps data (not copied) as a tensor of the given shape. It panics
// if len(data) does not match the shape.
func FromData(data []float32, shape ...int) *Tensor {
	if len(data) != Numel(shape) {
		panic(fmt.Sprintf("tensor: %d values do not fill shape %v", len(data), shape))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// Full returns a tensor of the given shape filled with v.
func Full(v float32, shape ...int) *Tensor {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = v
	}
	return t
}

// Param returns a zero tensor of the given shape that requires gradients.
func Param(shape ...int) *Tensor {
	t := New(shape...)
	t.requiresGrad = true
	return t
}

// SetRequiresGrad marks t as a leaf that accumulates gradients (or not) and
// returns t.
func (t *Tensor) SetRequiresGrad(b bool) *Tensor {
	t.requiresGrad = b
	return t
}

// RequiresGrad reports whether gradients flow to t.
func (t *Tensor) RequiresGrad() bool { return t.requiresGrad }

// Numel returns the number of elements of t.
func (t *Tensor) Numel() int { return len(t.Data) }

// Dim returns the size of dimension i; negative i counts from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

// Clone returns a copy of t's shape and data that does not require
// gradients.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// Detach returns a tensor sharing t's data, in t's pass, with no
// gradient history.
func (t *Tensor) Detach() *Tensor { return view(t, t.Shape, t.pass) }

// ZeroGrad drops the accumulated gradient.
func (t *Tensor) ZeroGrad() { t.Grad = nil }

// Item returns the only element of a one-element tensor.
func (t *Tensor) Item() float32 {
	if len(t.Data) != 1 {
		panic(fmt.Sprintf("tensor: Item of tensor with shape %v", t.Shape))
	}
	return t.Data[0]
}

// String describes the shape and the first few values.
func (t *Tensor) String() string {
	n := len(t.Data)
	if n > 6 {
		n = 6
	}
	return fmt.Sprintf("Tensor%v%v", t.Shape, t.Data[:n])
}

// AllFinite reports whether every element of t is finite.
func (t *Tensor) AllFinite() bool {
	for _, v := range t.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return false
		}
	}
	return true
}

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func mustSameShape(op string, a, b *Tensor) {
	if !SameShape(a.Shape, b.Shape) {
		panic(fmt.Sprintf("tensor: %s of shapes %v and %v", op, a.Shape, b.Shape))
	}
}
