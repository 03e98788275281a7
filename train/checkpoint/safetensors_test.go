package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// sameBits reports whether a and b hold the same shape and bit-identical
// values (so NaN payloads and signed zeros count).
func sameBits(a, b *tensor.Tensor) bool {
	if !tensor.SameShape(a.Shape, b.Shape) || len(a.Data) != len(b.Data) {
		return false
	}
	for i := range a.Data {
		if math.Float32bits(a.Data[i]) != math.Float32bits(b.Data[i]) {
			return false
		}
	}
	return true
}

// sampleTensors returns tensors covering the awkward cases: a scalar, an
// empty tensor, special values, a tensor larger than one conversion chunk,
// and names that need JSON escaping.
func sampleTensors() []nn.Named {
	rng := tensor.NewRNG(42)
	special := tensor.FromData([]float32{
		0, float32(math.Copysign(0, -1)), 1, -1,
		float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00001), // NaN with a payload
		math.Float32frombits(1),          // smallest subnormal
		math.MaxFloat32, math.SmallestNonzeroFloat32,
		3.1415927, -2.5e-30,
	}, 3, 4)
	return []nn.Named{
		{Name: "z.big", T: tensor.Randn(rng, 3*chunkFloats+17)},
		{Name: "a.weight", T: tensor.Randn(rng, 3, 3, 2, 5), Trainable: true},
		{Name: "scalar", T: tensor.FromData([]float32{7.5})},
		{Name: "empty", T: tensor.New(0, 3)},
		{Name: "special", T: special},
		{Name: `quote"back\slash/ünï€ode<tag>`, T: tensor.Randn(rng, 2)},
		{Name: "blocks.10.x", T: tensor.Randn(rng, 1, 1, 1, 1)},
		{Name: "blocks.2.x", T: tensor.Randn(rng, 4)},
	}
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	in := sampleTensors()
	meta := map[string]string{"format": "pt", "note": `"quoted" ü\n`, "empty": ""}
	if err := WriteSafetensors(path, in, meta); err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err := ReadSafetensors(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("read %d tensors, wrote %d", len(got), len(in))
	}
	for _, n := range in {
		g, ok := got[n.Name]
		if !ok {
			t.Errorf("tensor %q missing", n.Name)
			continue
		}
		if !sameBits(g, n.T) {
			t.Errorf("tensor %q: read %v, wrote %v", n.Name, g, n.T)
		}
	}
	if len(gotMeta) != len(meta) {
		t.Errorf("metadata %q, want %q", gotMeta, meta)
	}
	for k, v := range meta {
		if gotMeta[k] != v {
			t.Errorf("metadata %q = %q, want %q", k, gotMeta[k], v)
		}
	}

	// The file itself: 8-byte aligned data, tensors in sorted name order.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Errorf("data starts at %d, not a multiple of 8", 8+n)
	}
	var names []string
	for _, x := range in {
		names = append(names, x.Name)
	}
	slices.Sort(names)
	data := b[8+n:]
	var off int
	for _, name := range names {
		for _, v := range got[name].Data {
			if binary.LittleEndian.Uint32(data[off:]) != math.Float32bits(v) {
				t.Fatalf("tensor %q not at byte %d of the data", name, off)
			}
			off += 4
		}
	}
	if off != len(data) {
		t.Errorf("data has %d bytes, tensors %d", len(data), off)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}

func TestNoMetadata(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteSafetensors(path, []nn.Named{{Name: "x", T: tensor.Full(2, 2)}}, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte(metadataKey)) {
		t.Errorf("header has %s without metadata: %q", metadataKey, b)
	}
	_, meta, err := ReadSafetensors(path)
	if err != nil || len(meta) != 0 {
		t.Errorf("metadata %v, error %v", meta, err)
	}
	// No tensors at all is a valid (if useless) file.
	if err := WriteSafetensors(path, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, _, err := ReadSafetensors(path); err != nil || len(got) != 0 {
		t.Errorf("empty file: %v, %v", got, err)
	}
}

// TestByteLayout checks the exact bytes of a tiny file against ones built
// by hand from the safetensors specification.
func TestByteLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.safetensors")
	err := WriteSafetensors(path, []nn.Named{
		{Name: "b", T: tensor.FromData([]float32{0.5}, 1, 1)},
		{Name: "a", T: tensor.FromData([]float32{1, -2}, 2), Trainable: true},
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	header := `{"__metadata__":{"k":"v"},` +
		`"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},` +
		`"b":{"dtype":"F32","shape":[1,1],"data_offsets":[8,12]}}`
	if len(header) != 135 {
		t.Fatalf("test header is %d bytes", len(header))
	}
	header += " " // 135 -> 136, a multiple of 8
	var want []byte
	want = append(want, 136, 0, 0, 0, 0, 0, 0, 0) // u64 little-endian header length (136)
	want = append(want, header...)
	want = append(want,
		0x00, 0x00, 0x80, 0x3f, // a[0] = 1.0  (0x3f800000)
		0x00, 0x00, 0x00, 0xc0, // a[1] = -2.0 (0xc0000000)
		0x00, 0x00, 0x00, 0x3f, // b[0] = 0.5  (0x3f000000)
	)
	if !bytes.Equal(got, want) {
		t.Errorf("file bytes\n%q\nwant\n%q", got, want)
	}
}

// file builds a safetensors file from a header (padded with spaces to a
// multiple of 8) and data.
func file(header string, data ...float32) []byte {
	for (len(header))%8 != 0 {
		header += " "
	}
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	for _, v := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.safetensors")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestReadOtherLayout reads a valid file laid out differently from ours:
// whitespace in the header, metadata last, data not in name order,
// unknown fields in an entry, header length not padded.
func TestReadOtherLayout(t *testing.T) {
	b := file(`{ "y" : {"data_offsets": [0, 4], "shape": [], "dtype": "F32", "extra": 1},
	 "x": {"dtype":"F32","shape":[1,2],"data_offsets":[4,12]},
	 "__metadata__": {"a": "b"} }`, 9, 1, 2)
	// Unpadded: drop the padding and fix the length.
	n := binary.LittleEndian.Uint64(b)
	h := bytes.TrimRight(b[8:8+n], " ")
	b = append(binary.LittleEndian.AppendUint64(nil, uint64(len(h))), append(h, b[8+n:]...)...)
	got, meta, err := ReadSafetensors(writeTemp(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if !sameBits(got["y"], tensor.FromData([]float32{9})) || !sameBits(got["x"], tensor.FromData([]float32{1, 2}, 1, 2)) || meta["a"] != "b" {
		t.Errorf("got %v %v", got, meta)
	}
}

func TestReadCorrupt(t *testing.T) {
	good := file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, 1, 2, 3)
	hugeLen := slices.Clone(good)
	binary.LittleEndian.PutUint64(hugeLen, 1<<62)
	overLimit := slices.Clone(good)
	binary.LittleEndian.PutUint64(overLimit, maxHeaderLen+1)
	pastEnd := slices.Clone(good)
	binary.LittleEndian.PutUint64(pastEnd, uint64(len(good)-7))
	entry := func(name, dtype, shape, offs string) string {
		return `"` + name + `":{"dtype":"` + dtype + `","shape":` + shape + `,"data_offsets":` + offs + `}`
	}
	cases := []struct {
		name string
		b    []byte
		want string // in the error message
	}{
		{"empty", nil, "too short"},
		{"short", []byte{1, 2, 3}, "too short"},
		{"huge header length", hugeLen, "exceeds the limit"},
		{"header length over limit", overLimit, "exceeds the limit"},
		{"header past end", pastEnd, "exceeds the"},
		{"zero header", make([]byte, 8), "too short for a JSON object"},
		{"truncated data", good[:len(good)-1], "past the end"},
		{"extra data", append(slices.Clone(good), 0, 0, 0, 0), "cover 12 bytes but the data buffer has 16"},
		{"bad json", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`, 1, 2), "not valid JSON"},
		{"bad json 2", file(`{"a" "b"}`), "not valid JSON"},
		{"not an object", file(`[1, 2]`), "does not start with '{'"},
		{"trailing data", file(`{} {}`), "after its JSON object"},
		{"bad utf8", file("{\"\xff\":1}"), "UTF-8"},
		{"entry not object", file(`{"a":[1]}`), `tensor "a": header entry is not a JSON object`},
		{"wrong dtype", file(`{`+entry("w", "F16", "[2]", "[0,4]")+`}`, 1), `tensor "w": dtype F16 is not supported`},
		{"wrong dtype F64", file(`{`+entry("w", "F64", "[1]", "[0,8]")+`}`, 1, 2), `tensor "w": dtype F64`},
		{"unknown dtype", file(`{`+entry("w", "Q9", "[1]", "[0,4]")+`}`, 1), `unknown dtype "Q9"`},
		{"no dtype", file(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, 1), "dtype is missing"},
		{"no shape", file(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, 1), "shape is missing"},
		{"null shape", file(`{"w":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, 1), "shape is missing"},
		{"float shape", file(`{`+entry("w", "F32", "[1.5]", "[0,4]")+`}`, 1), "shape is missing or not"},
		{"negative dim", file(`{`+entry("w", "F32", "[-1,-4]", "[0,16]")+`}`, 1, 2, 3, 4), "invalid dimension -1"},
		{"huge shape", file(`{`+entry("w", "F32", "[2147483647,2147483647,2147483647]", "[0,4]")+`}`, 1), "too large"},
		{"shape vs bytes", file(`{`+entry("w", "F32", "[3]", "[0,8]")+`}`, 1, 2), "needs 12 bytes"},
		{"three offsets", file(`{`+entry("w", "F32", "[1]", "[0,4,8]")+`}`, 1, 2), "not a pair"},
		{"reversed offsets", file(`{`+entry("w", "F32", "[1]", "[4,0]")+`}`, 1), "invalid data_offsets"},
		{"negative offset", file(`{`+entry("w", "F32", "[1]", "[-4,0]")+`}`, 1), "invalid data_offsets"},
		{"huge offset", file(`{`+entry("w", "F32", "[1]", "[18446744073709551612,18446744073709551616]")+`}`, 1), "data_offsets is missing or not"},
		{"offsets out of range", file(`{`+entry("w", "F32", "[1]", "[4,8]")+`}`, 1), "past the end"},
		{"overlap", file(`{`+entry("a", "F32", "[2]", "[0,8]")+`,`+entry("b", "F32", "[2]", "[4,12]")+`}`, 1, 2, 3), `tensor "b": data_offsets [4, 12] overlap tensor "a"`},
		{"same offsets", file(`{`+entry("a", "F32", "[1]", "[0,4]")+`,`+entry("b", "F32", "[1]", "[0,4]")+`}`, 1), "overlap"},
		{"gap", file(`{`+entry("a", "F32", "[1]", "[0,4]")+`,`+entry("b", "F32", "[1]", "[8,12]")+`}`, 1, 2, 3), "gap of 4 bytes"},
		{"gap at start", file(`{`+entry("a", "F32", "[1]", "[4,8]")+`}`, 1, 2), "gap"},
		{"duplicate name", file(`{`+entry("a", "F32", "[1]", "[0,4]")+`,`+entry("a", "F32", "[1]", "[4,8]")+`}`, 1, 2), `key "a" twice`},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`), "__metadata__ is not an object of strings"},
		{"metadata twice", file(`{"__metadata__":{},"__metadata__":{}}`), "twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, c.b)
			got, _, err := ReadSafetensors(path)
			if err == nil {
				t.Fatalf("read %v, want an error containing %q", got, c.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("error %v (%T) is not a *FormatError", err, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not name the file and contain %q", err, c.want)
			}
		})
	}

	// Every proper prefix of a valid file is invalid.
	valid, err := os.ReadFile(writeTemp(t, good))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadSafetensors(writeTemp(t, valid)); err != nil {
		t.Fatalf("valid file: %v", err)
	}
	prefix := filepath.Join(t.TempDir(), "prefix.safetensors")
	for n := range len(valid) {
		if err := os.WriteFile(prefix, valid[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ReadSafetensors(prefix); err == nil {
			t.Errorf("file truncated to %d of %d bytes read without error", n, len(valid))
		}
	}

	if _, _, err := ReadSafetensors(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
	if _, _, err := ReadSafetensors(t.TempDir()); err == nil {
		t.Errorf("directory read without error")
	}
}

func TestWriteInvalid(t *testing.T) {
	x := tensor.Full(1, 2)
	cases := map[string][]nn.Named{
		"empty name":     {{Name: "", T: x}},
		"reserved name":  {{Name: metadataKey, T: x}},
		"duplicate name": {{Name: "a", T: x}, {Name: "b", T: x}, {Name: "a", T: x}},
		"nil tensor":     {{Name: "a"}},
		"short data":     {{Name: "a", T: &tensor.Tensor{Shape: []int{3}, Data: []float32{1, 2}}}},
		"negative dim":   {{Name: "a", T: &tensor.Tensor{Shape: []int{-1}}}},
		"bad utf8 name":  {{Name: "\xff", T: x}},
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	if err := WriteSafetensors(path, []nn.Named{{Name: "keep", T: x}}, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	for name, ts := range cases {
		if err := WriteSafetensors(path, ts, nil); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if err := WriteSafetensors(path, nil, map[string]string{"k": "\xff"}); err == nil {
		t.Errorf("invalid UTF-8 metadata written")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Errorf("failed writes changed the file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(entries))
	}
	if err := WriteSafetensors(filepath.Join(dir, "no", "such", "dir", "w"), nil, nil); err == nil {
		t.Errorf("write into a missing directory succeeded")
	}
}

// validFile returns the bytes of a small valid file written by
// WriteSafetensors.
func validFile(tb testing.TB) []byte {
	path := filepath.Join(tb.TempDir(), "seed.safetensors")
	err := WriteSafetensors(path, []nn.Named{
		{Name: "a", T: tensor.FromData([]float32{1, 2, 3, 4, 5, 6}, 2, 3)},
		{Name: "b", T: tensor.FromData([]float32{-1})},
		{Name: "c", T: tensor.New(0)},
	}, map[string]string{"format": "flowood"})
	if err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func FuzzReadSafetensors(f *testing.F) {
	f.Add(validFile(f))
	f.Add(file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 1))
	f.Add(file(`{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}`, 1))
	f.Add(file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 1, 2, 3))
	f.Add(file(`{"__metadata__":{"k":"v"}}`))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		tensors, meta, err := readSafetensors(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			if tensors != nil || meta != nil {
				t.Errorf("error %v with results", err)
			}
			return
		}
		// A file that reads must account for every byte of its buffer.
		n := int(binary.LittleEndian.Uint64(b))
		total := 0
		for name, x := range tensors {
			k, ok := numel(x.Shape)
			if !ok || k != len(x.Data) {
				t.Errorf("tensor %q: %d values for shape %v", name, len(x.Data), x.Shape)
			}
			total += 4 * len(x.Data)
		}
		if total != len(b)-8-n {
			t.Errorf("tensors hold %d bytes, buffer has %d", total, len(b)-8-n)
		}
	})
}
