package checkpoint

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// pythonScript reads a safetensors file written by WriteSafetensors and
// prints its tensors (as float32 bit patterns) and metadata as JSON, with
// the most authoritative reader available: safetensors.torch, then
// safetensors.numpy, then a parser of its own (numpy or the standard
// library), which also checks the layout WriteSafetensors promises. With
// a second argument it writes a file of its own, laid out differently.
const pythonScript = `
import json, struct, sys

def own_parser(path):
    with open(path, "rb") as f:
        b = f.read()
    (n,) = struct.unpack("<Q", b[:8])
    assert (8 + n) % 8 == 0, "data not 8-byte aligned"
    raw = b[8:8 + n]
    text = raw.decode("utf-8")
    assert text.startswith("{"), "header start"
    stripped = text.rstrip(" ")
    assert stripped.endswith("}"), "padding is not spaces"
    header = json.loads(stripped)
    meta = header.pop("__metadata__", {})
    buf = b[8 + n:]
    at = 0
    out = {}
    for name in sorted(header):  # data in sorted name order, contiguous
        info = header[name]
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        assert begin == at, (name, begin, at)
        count = 1
        for d in info["shape"]:
            count *= d
        assert end - begin == 4 * count, name
        at = end
        try:
            import numpy as np
            bits = np.frombuffer(buf[begin:end], dtype="<u4").tolist()
        except ImportError:
            bits = list(struct.unpack("<%dI" % count, buf[begin:end]))
        out[name] = {"shape": list(info["shape"]), "bits": bits}
    assert at == len(buf), "trailing data"
    return out, meta

def read(path):
    try:
        import torch
        from safetensors import safe_open
        from safetensors.torch import load_file
        ts = load_file(path)
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        out = {}
        for name, t in ts.items():
            assert t.dtype == torch.float32, name
            bits = [v & 0xFFFFFFFF for v in t.contiguous().view(torch.int32).flatten().tolist()]
            out[name] = {"shape": list(t.shape), "bits": bits}
        return "safetensors.torch", out, meta
    except ImportError:
        pass
    try:
        import numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
        ts = load_file(path)
        with safe_open(path, framework="np") as f:
            meta = f.metadata() or {}
        out = {}
        for name, a in ts.items():
            assert a.dtype == np.float32, name
            out[name] = {"shape": list(a.shape), "bits": a.view("<u4").flatten().tolist()}
        return "safetensors.numpy", out, meta
    except ImportError:
        pass
    try:
        import numpy
        reader = "own parser (numpy)"
    except ImportError:
        reader = "own parser (standard library)"
    out, meta = own_parser(path)
    return reader, out, meta

def write(path):
    # Reverse name order in the data, spaces in the header, metadata last,
    # header not padded.
    tensors = [("p.weight", [2, 3], [i * 0.25 - 1 for i in range(6)]),
               ("p.bias", [3], [1.5, -0.0, 1e-3]),
               ("a.scalar", [], [3.0])]
    header, data = {}, b""
    for name, shape, vals in tensors:
        b = struct.pack("<%df" % len(vals), *vals)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    header["__metadata__"] = {"from": "python"}
    h = json.dumps(header, indent=1).encode("utf-8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)

reader, out, meta = read(sys.argv[1])
if len(sys.argv) > 2:
    write(sys.argv[2])
json.dump({"reader": reader, "tensors": out, "metadata": meta}, sys.stdout)
`

// TestPython checks interoperability with Python: a Python reader
// (safetensors.torch when installed, else a parser of its own) reads a
// file we write, and we read a file Python writes. Skipped without python3.
func TestPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "check.py")
	if err := os.WriteFile(script, []byte(pythonScript), 0o644); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(dir, "ours.safetensors")
	theirs := filepath.Join(dir, "theirs.safetensors")
	in := sampleTensors()
	meta := map[string]string{"format": "pt", "note": `"quoted" ü`}
	if err := WriteSafetensors(ours, in, meta); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, script, ours, theirs)
	cmd.Stderr = new(strings.Builder)
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, cmd.Stderr)
	}
	var got struct {
		Reader  string
		Tensors map[string]struct {
			Shape []int
			Bits  []uint32
		}
		Metadata map[string]string
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("python output: %v\n%s", err, stdout)
	}
	t.Logf("python read our file with %s", got.Reader)
	if len(got.Tensors) != len(in) {
		t.Errorf("python read %d tensors, want %d", len(got.Tensors), len(in))
	}
	for _, n := range in {
		g, ok := got.Tensors[n.Name]
		if !ok {
			t.Errorf("python lacks %q", n.Name)
			continue
		}
		if !tensor.SameShape(g.Shape, n.T.Shape) || len(g.Bits) != len(n.T.Data) {
			t.Errorf("%q: python read shape %v with %d values, want %v", n.Name, g.Shape, len(g.Bits), n.T.Shape)
			continue
		}
		for i, v := range n.T.Data {
			if g.Bits[i] != math.Float32bits(v) {
				t.Errorf("%q[%d]: python read bits %#x, want %#x", n.Name, i, g.Bits[i], math.Float32bits(v))
				break
			}
		}
	}
	for k, v := range meta {
		if got.Metadata[k] != v {
			t.Errorf("python metadata %q = %q, want %q", k, got.Metadata[k], v)
		}
	}

	ts, theirMeta, err := ReadSafetensors(theirs)
	if err != nil {
		t.Fatal(err)
	}
	want := []nn.Named{
		{Name: "p.weight", T: tensor.FromData([]float32{-1, -0.75, -0.5, -0.25, 0, 0.25}, 2, 3)},
		{Name: "p.bias", T: tensor.FromData([]float32{1.5, float32(math.Copysign(0, -1)), 1e-3}, 3)},
		{Name: "a.scalar", T: tensor.FromData([]float32{3})},
	}
	if len(ts) != len(want) || theirMeta["from"] != "python" {
		t.Errorf("read %d tensors and metadata %v from python's file", len(ts), theirMeta)
	}
	for _, w := range want {
		if g := ts[w.Name]; g == nil || !sameBits(g, w.T) {
			t.Errorf("python's %q read as %v, want %v", w.Name, g, w.T)
		}
	}
}
