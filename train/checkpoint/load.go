package checkpoint

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// ShapeMismatch is a tensor whose shape in a checkpoint differs from the
// model's.
type ShapeMismatch struct {
	Name        string
	File, Model []int
}

// MismatchError reports every way a set of tensors fails to match a
// model; each list is sorted by name.
type MismatchError struct {
	// Missing are model tensors the checkpoint lacks.
	Missing []string
	// Unexpected are checkpoint tensors the model lacks.
	Unexpected []string
	// Shapes are tensors whose shapes differ.
	Shapes []ShapeMismatch
	// Invalid are checkpoint tensors that are nil or whose data does not
	// fill their shape.
	Invalid []string
	// Duplicate are names the model gives to more than one tensor.
	Duplicate []string
}

// Error implements error, listing every problem.
func (e *MismatchError) Error() string {
	var parts []string
	list := func(what string, names []string) {
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%d %s: %s", len(names), what, strings.Join(names, ", ")))
		}
	}
	list("missing from the checkpoint", e.Missing)
	list("unexpected (not in the model)", e.Unexpected)
	if len(e.Shapes) > 0 {
		s := make([]string, len(e.Shapes))
		for i, m := range e.Shapes {
			s[i] = fmt.Sprintf("%s (checkpoint %v, model %v)", m.Name, m.File, m.Model)
		}
		list("with mismatched shapes", s)
	}
	list("invalid in the checkpoint", e.Invalid)
	list("duplicated in the model", e.Duplicate)
	return "checkpoint: tensors do not match the model: " + strings.Join(parts, "; ")
}

// LoadInto copies tensors into the tensors of m (parameters and buffers)
// with the same names. Every tensor of m must be present with the same
// shape and there must be no others; otherwise LoadInto returns a
// *MismatchError listing all the differences and leaves m unchanged.
// The data is copied, so m shares no memory with tensors.
func LoadInto(m nn.Module, tensors map[string]*tensor.Tensor) error {
	model := nn.Tensors(m)
	var e MismatchError
	seen := make(map[string]bool, len(model))
	for _, t := range model {
		if seen[t.Name] {
			if !slices.Contains(e.Duplicate, t.Name) {
				e.Duplicate = append(e.Duplicate, t.Name)
			}
			continue
		}
		seen[t.Name] = true
		src, ok := tensors[t.Name]
		switch {
		case !ok:
			e.Missing = append(e.Missing, t.Name)
		case src == nil:
			e.Invalid = append(e.Invalid, t.Name)
		case !tensor.SameShape(src.Shape, t.T.Shape):
			e.Shapes = append(e.Shapes, ShapeMismatch{t.Name, slices.Clone(src.Shape), slices.Clone(t.T.Shape)})
		case len(src.Data) != len(t.T.Data):
			e.Invalid = append(e.Invalid, t.Name)
		}
	}
	for name := range tensors {
		if !seen[name] {
			e.Unexpected = append(e.Unexpected, name)
		}
	}
	if len(e.Missing)+len(e.Unexpected)+len(e.Shapes)+len(e.Invalid)+len(e.Duplicate) > 0 {
		slices.Sort(e.Missing)
		slices.Sort(e.Unexpected)
		slices.SortFunc(e.Shapes, func(a, b ShapeMismatch) int { return strings.Compare(a.Name, b.Name) })
		slices.Sort(e.Invalid)
		slices.Sort(e.Duplicate)
		return &e
	}
	for _, t := range model {
		copy(t.T.Data, tensors[t.Name].Data)
	}
	return nil
}
