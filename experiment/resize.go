package experiment

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/data/pixels"
	"github.com/flowood/flowood/runfile"
)

// ResizeMethods are the methods of EvalOptions.ResizeVariants
// (pixels.Methods: area, bilinear, nearest).
var ResizeMethods = pixels.Methods

// checkResizeVariants reports a method of EvalOptions.ResizeVariants
// that does not exist, or one named twice.
func checkResizeVariants(methods []string) error {
	for i, m := range methods {
		if !slices.Contains(ResizeMethods, m) {
			return fmt.Errorf("resize variant %q: want one of %s", m, strings.Join(ResizeMethods, ", "))
		}
		if slices.Contains(methods[:i], m) {
			return fmt.Errorf("resize variant %q named twice", m)
		}
	}
	return nil
}

// resizeVariants returns the OOD set name (split split, loaded as im) as
// the model's data d would see it resized by each of methods other than
// the one im was resized with, labelled NAME@METHOD; none when flowood
// did not resize im (a native set has nothing to vary).
func resizeVariants(d runfile.Data, name, split string, im *data.Images, methods []string) ([]oodVariant, error) {
	if im.Resampling.Method == "" {
		return nil, nil
	}
	var out []oodVariant
	for _, m := range methods {
		if m == im.Resampling.Method {
			continue
		}
		v, err := loadData(name, split, d.Embedded, d.Height, d.Width, d.Channels, m)
		if err != nil {
			return nil, fmt.Errorf("loading %s %s resized by %s: %w", name, split, m, err)
		}
		out = append(out, oodVariant{label: name + "@" + m, im: v})
	}
	return out, nil
}

// oodVariant is an OOD set prepared another way (resized by another
// method, or given the in-distribution set's compression), scored as a
// set of its own under label.
type oodVariant struct {
	label string
	im    *data.Images
}

// resizeNote returns a sentence for metrics.json when the OOD set's
// pixels were resized differently from the in-distribution set's, or ""
// when they were resized alike (data.SameResampling).
func resizeNote(in, out *data.Images) string {
	if data.SameResampling(in.Resampling, out.Resampling) {
		return ""
	}
	return fmt.Sprintf("resized differently: in-distribution %s %s is %s; OOD %s %s is %s. A flow learns local pixel "+
		"statistics, which resizing changes, so part of the likelihood gap may be the resizing's (compare the rows "+
		"NAME@METHOD of eval --resize-variants)", in.Name, in.Split, in.Resampling, out.Name, out.Split, out.Resampling)
}

// resizeRun is an evaluated run of a report: its model, in-distribution
// data set and metrics.
type resizeRun struct {
	model, in string
	m         *Metrics
}

// reportResizing writes the report's paragraph on resizing: each run's
// notes on OOD sets resized differently from its in-distribution set
// (Metrics.ResizeNotes, once per run) and what the NAME@METHOD rows are.
func reportResizing(r *Reproduction, runs []resizeRun) {
	seen := map[*Metrics]bool{}
	var lines []string
	variants := false
	for _, run := range runs {
		model, in, m := run.model, run.in, run.m
		if seen[m] {
			continue
		}
		seen[m] = true
		for _, n := range m.ResizeNotes {
			lines = append(lines, fmt.Sprintf("- %s trained on %s: %s.", model, in, n))
		}
		for o := range m.OOD {
			base, _, _ := strings.Cut(o, "@jpeg")
			if strings.Contains(base, "@") {
				variants = true
			}
		}
	}
	if len(lines) == 0 {
		return
	}
	r.Printf("\n**Resizing differs between in- and OOD sets.** A flow learns local pixel statistics (the paper's Sec. 4), and resizing changes them: area averaging smooths, nearest neighbour keeps the source's pixel-level texture, bilinear without antialiasing is in between. Where the in-distribution set is native and the OOD set was resized by flowood (or the other way round), part of the likelihood gap is the resizing's, as part of it is the compression's for lossy data:\n\n%s\n", strings.Join(lines, "\n"))
	if variants {
		r.Printf("\nThe rows NAME@METHOD score the same OOD images resized to the model's size by that method instead (NAME@METHOD@jpegQ: then given the in-distribution set's JPEG round trip); the plain NAME row uses the loader's default (%s when shrinking). The spread of their AUROCs is how much the resizing method alone moves the result.\n", ResizeMethods[0])
	}
}
