package data

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// npyBytes builds a .npy file by hand: version major, a header dict padded
// as NumPy pads it, and payload.
func npyBytes(major byte, dict string, payload []byte) []byte {
	var b []byte
	b = append(b, npyMagic...)
	b = append(b, major, 0)
	pre := 10
	if major >= 2 {
		pre = 12
	}
	total := (pre + len(dict) + 1 + 63) / 64 * 64
	hl := total - pre
	if major >= 2 {
		b = binary.LittleEndian.AppendUint32(b, uint32(hl))
	} else {
		b = binary.LittleEndian.AppendUint16(b, uint16(hl))
	}
	b = append(b, dict...)
	b = append(b, bytes.Repeat([]byte{' '}, hl-len(dict)-1)...)
	b = append(b, '\n')
	return append(b, payload...)
}

func testArrays() []*Array {
	return []*Array{
		{Name: "f8", DType: "<f8", Shape: []int{2, 3}, F64: []float64{1, -2.5, 3, math.Pi, 0, 1e300}},
		{Name: "f4", DType: "<f4", Shape: []int{3}, F32: []float32{1.5, -2, 7}},
		{Name: "u1", DType: "|u1", Shape: []int{2, 2, 1}, U8: []uint8{0, 255, 7, 9}},
		{Name: "i4", DType: "<i4", Shape: []int{2}, I32: []int32{-1, math.MaxInt32}},
		{Name: "i8", DType: "<i8", Shape: []int{}, I64: []int64{math.MinInt64}},
		{Name: "empty", DType: "<f8", Shape: []int{0, 5}, F64: []float64{}},
	}
}

func TestNPYRoundTrip(t *testing.T) {
	for _, a := range testArrays() {
		var buf bytes.Buffer
		if err := WriteNPY(&buf, a); err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		if buf.Len()%64 != a.Len()*npyItemSize[a.DType]%64 {
			t.Errorf("%s: data does not start at a multiple of 64 bytes", a.Name)
		}
		got, err := ReadNPY(&buf, a.Name)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		if !reflect.DeepEqual(got, a) {
			t.Errorf("%s: round trip gave %+v, want %+v", a.Name, got, a)
		}
	}
}

func TestNPYHeaderVariants(t *testing.T) {
	payload := binary.LittleEndian.AppendUint64(nil, math.Float64bits(2.5))
	payload = binary.LittleEndian.AppendUint64(payload, math.Float64bits(-1))
	for _, tc := range []struct {
		major byte
		dict  string
	}{
		{1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"},
		{2, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"},
		{3, `{"descr": "<f8", "fortran_order": False, "shape": (2L,)}`},
		{1, "{'shape': (1, 2), 'fortran_order': False, 'descr': '<f8'}"},
	} {
		a, err := ReadNPY(bytes.NewReader(npyBytes(tc.major, tc.dict, payload)), "x.npy")
		if err != nil {
			t.Errorf("v%d %s: %v", tc.major, tc.dict, err)
			continue
		}
		if !reflect.DeepEqual(a.F64, []float64{2.5, -1}) {
			t.Errorf("v%d %s: values %v", tc.major, tc.dict, a.F64)
		}
	}
}

func TestReadNPYErrors(t *testing.T) {
	f8 := func(n int) []byte { return make([]byte, 8*n) }
	good := "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }"
	valid := npyBytes(1, good, f8(6))
	lenPastEOF := append([]byte(nil), valid[:10]...)
	binary.LittleEndian.PutUint16(lenPastEOF[8:], 60000)
	lenPastEOF = append(lenPastEOF, "{'descr'"...)
	v2huge := append([]byte(npyMagic), 2, 0, 0xff, 0xff, 0xff, 0xff)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"short preamble", valid[:7], "truncated"},
		{"bad magic", append([]byte("\x93NUMPX"), valid[6:]...), "bad npy magic"},
		{"version", append([]byte(npyMagic+"\x04\x00"), valid[8:]...), "unsupported npy format version 4.0"},
		{"header length past EOF", lenPastEOF, "runs past the end"},
		{"header too long", v2huge, "header length"},
		{"truncated data", valid[:len(valid)-5], "truncated: npy shape (2, 3) of <f8 needs 6 values, got 5"},
		{"trailing data", append(valid, 0), "trailing data"},
		{"shape overflow", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", nil), "overflows"},
		{"shape too large", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000), }", f8(1)), "too large"},
		{"huge shape short data", npyBytes(1, "{'descr': '<u1', 'fortran_order': False, 'shape': (1000000, 1000), }", f8(1)), "truncated"},
		{"big-endian", npyBytes(1, "{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", f8(1)), "big-endian"},
		{"object", npyBytes(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", f8(1)), "object arrays"},
		{"structured", npyBytes(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }", f8(1)), "structured"},
		{"complex", npyBytes(1, "{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", f8(2)), "unsupported npy dtype \"<c16\""},
		{"fortran order", npyBytes(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", f8(6)), "Fortran order"},
		{"negative dim", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }", nil), "malformed npy header"},
		{"missing key", npyBytes(1, "{'descr': '<f8', 'shape': (1,), }", f8(1)), "missing key fortran_order"},
		{"unknown key", npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", f8(1)), "unknown key"},
		{"not a dict", npyBytes(1, "descr", f8(1)), "malformed"},
		{"unterminated", npyBytes(1, "{'descr': '<f8", f8(1)), "malformed"},
		{"junk after", npyBytes(1, good+"x", f8(6)), "after the closing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadNPY(bytes.NewReader(tc.data), "bad.npy")
			if err == nil {
				t.Fatalf("no error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "reading bad.npy: ") {
				t.Errorf("error %q, want one naming bad.npy and containing %q", err, tc.want)
			}
		})
	}
}

func TestNPZ(t *testing.T) {
	dir := t.TempDir()
	for _, compress := range []bool{false, true} {
		var buf bytes.Buffer
		if err := WriteNPZ(&buf, testArrays(), compress); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "a.npz")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadNPZ(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range testArrays() {
			if !reflect.DeepEqual(got[a.Name], a) {
				t.Errorf("compress=%v: member %s = %+v, want %+v", compress, a.Name, got[a.Name], a)
			}
		}
		if len(got) != len(testArrays()) {
			t.Errorf("got %d members", len(got))
		}
		// A corrupt member is reported with the archive and member names.
		data := buf.Bytes()
		i := bytes.Index(data, []byte(npyMagic))
		bad := append([]byte(nil), data...)
		bad[i+1] = 'X'
		_, err = ReadNPZFrom(bytes.NewReader(bad), int64(len(bad)), "bad.npz")
		if err == nil || !strings.Contains(err.Error(), "bad.npz") || !strings.Contains(err.Error(), "member") {
			t.Errorf("corrupt member: error %v", err)
		}
	}
	if _, err := ReadNPZFrom(bytes.NewReader([]byte("not a zip")), 9, "x.npz"); err == nil || !strings.Contains(err.Error(), "x.npz") {
		t.Errorf("not a zip: error %v", err)
	}
	if _, err := ReadNPZ(filepath.Join(dir, "missing.npz")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestArrayTabular(t *testing.T) {
	a := &Array{Name: "x", DType: "<f4", Shape: []int{2, 2}, F32: []float32{1, 2, 3, 4}}
	tab, err := a.Tabular("t", "test")
	if err != nil || tab.N != 2 || tab.D != 2 || !reflect.DeepEqual(tab.X, []float64{1, 2, 3, 4}) {
		t.Errorf("Tabular = %+v, %v", tab, err)
	}
	a.F32[3] = float32(math.NaN())
	if _, err := a.Tabular("t", "test"); err == nil || !strings.Contains(err.Error(), "row 1, column 1") {
		t.Errorf("NaN: error %v", err)
	}
	if _, err := (&Array{DType: "<f8", Shape: []int{3}, F64: make([]float64, 3)}).Tabular("", ""); err == nil {
		t.Error("1-D array: no error")
	}
}

// TestReadNPYMirror reads the MAF-preprocessed MiniBooNE test split from the
// mirror named by FLOWOOD_MIRROR.
func TestReadNPYMirror(t *testing.T) {
	mirror := os.Getenv("FLOWOOD_MIRROR")
	if mirror == "" {
		t.Skip("FLOWOOD_MIRROR not set")
	}
	for _, tc := range []struct {
		file string
		n    int
	}{{"test.npy", 3648}, {"val.npy", 3284}} {
		a, err := ReadNPYFile(filepath.Join(mirror, "miniboone", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if a.DType != "<f8" || !reflect.DeepEqual(a.Shape, []int{tc.n, 43}) {
			t.Fatalf("%s: dtype %s shape %v, want <f8 (%d, 43)", tc.file, a.DType, a.Shape, tc.n)
		}
		tab, err := a.Tabular("miniboone", strings.TrimSuffix(tc.file, ".npy"))
		if err != nil {
			t.Fatal(err)
		}
		var worst, sumsd float64
		for j := range tab.D {
			var s, s2 float64
			for i := range tab.N {
				v := tab.X[i*tab.D+j]
				s += v
				s2 += v * v
			}
			mean := s / float64(tab.N)
			sd := math.Sqrt(s2/float64(tab.N) - mean*mean)
			worst = max(worst, math.Abs(mean))
			sumsd += sd
		}
		t.Logf("%s: %dx%d, largest |column mean| %.3f, average column sd %.3f", tc.file, tab.N, tab.D, worst, sumsd/float64(tab.D))
		if worst > 0.5 {
			t.Errorf("%s: a column mean is %.3f, want roughly standardised data", tc.file, worst)
		}
	}
}

func FuzzReadNPY(f *testing.F) {
	for _, a := range testArrays() {
		var buf bytes.Buffer
		WriteNPY(&buf, a)
		f.Add(buf.Bytes())
	}
	f.Add(npyBytes(3, "{'descr': '<i8', 'fortran_order': False, 'shape': (1000000000, 3), }", make([]byte, 24)))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ReadNPY(bytes.NewReader(data), "fuzz.npy")
		if err != nil {
			return
		}
		if a.Len()*npyItemSize[a.DType] > len(data) {
			t.Fatalf("array of %d values from %d bytes", a.Len(), len(data))
		}
		var buf bytes.Buffer
		if err := WriteNPY(&buf, a); err != nil {
			t.Fatalf("cannot write back what was read: %v", err)
		}
		b, err := ReadNPY(&buf, "fuzz.npy")
		if err != nil || !reflect.DeepEqual(a.Shape, b.Shape) || a.DType != b.DType {
			t.Fatalf("round trip: %v", err)
		}
	})
}
