package data

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// svhnFixture builds SVHN-style variables X (H x W x C x N, column-major)
// and y whose pixel value at row i, column j, channel k of image m is
// val(m, i, j, k), writing the values by MATLAB's linear index formula.
func svhnFixture(h, w, c, n int, val func(m, i, j, k int) uint8, labels []float64) []*MATVar {
	x := &MATVar{Name: "X", Class: "uint8", Dims: []int{h, w, c, n}, U8: make([]uint8, h*w*c*n)}
	for m := range n {
		for i := range h {
			for j := range w {
				for k := range c {
					x.U8[i+h*j+h*w*k+h*w*c*m] = val(m, i, j, k)
				}
			}
		}
	}
	y := &MATVar{Name: "y", Class: "double", Dims: []int{n, 1}, F64: labels}
	return []*MATVar{x, y}
}

func TestSVHNLayout(t *testing.T) {
	labels := []float64{10, 1, 2, 9, 10}
	want := []uint8{0, 1, 2, 9, 0}
	// Three fixtures whose pixel values encode the row, the column and the
	// channel and image, so that together they pin down every position.
	coords := []func(m, i, j, k int) uint8{
		func(m, i, j, k int) uint8 { return uint8(i) },
		func(m, i, j, k int) uint8 { return uint8(j) },
		func(m, i, j, k int) uint8 { return uint8(k + 3*m) },
	}
	for _, shape := range [][4]int{{32, 32, 3, 5}, {4, 3, 2, 5}} {
		h, w, c, n := shape[0], shape[1], shape[2], shape[3]
		for ci, val := range coords {
			for _, compress := range []bool{true, false} {
				var buf bytes.Buffer
				if err := WriteMAT(&buf, svhnFixture(h, w, c, n, val, labels), compress); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "test_32x32.mat")
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				im, err := ReadSVHNFile(path, "test")
				if err != nil {
					t.Fatalf("%v coord %d compress=%v: %v", shape, ci, compress, err)
				}
				if im.N != n || im.H != h || im.W != w || im.C != c || im.Validate() != nil || im.Source != path || im.Name != "svhn" {
					t.Fatalf("%v: got %+v", shape, im)
				}
				if !reflect.DeepEqual(im.Labels, want) {
					t.Errorf("labels %v, want %v", im.Labels, want)
				}
				bad := 0
				for m := range n {
					img := im.Image(m)
					for i := range h {
						for j := range w {
							for k := range c {
								if got := img[(i*w+j)*c+k]; got != val(m, i, j, k) {
									bad++
								}
							}
						}
					}
				}
				if bad > 0 {
					t.Errorf("%v coord %d compress=%v: %d pixels in the wrong place", shape, ci, compress, bad)
				}
			}
		}
	}
}

func TestMATRoundTrip(t *testing.T) {
	vars := []*MATVar{
		{Name: "a", Class: "double", Dims: []int{2, 3}, F64: []float64{0.5, -1, 2, 1e10, math.Inf(1), 3}},
		{Name: "longer_name", Class: "uint8", Dims: []int{1, 3}, U8: []uint8{1, 2, 3}},
		{Name: "y", Class: "double", Dims: []int{3, 1}, F64: []float64{10, 1, 255}}, // stored as miUINT8
		{Name: "e", Class: "double", Dims: []int{0, 0}, F64: []float64{}},
		{Name: "one", Class: "uint8", Dims: []int{1, 1}, U8: []uint8{7}}, // small data element
	}
	for _, compress := range []bool{false, true} {
		var buf bytes.Buffer
		if err := WriteMAT(&buf, vars, compress); err != nil {
			t.Fatal(err)
		}
		got, err := ReadMAT(&buf, "x.mat")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, vars) {
			for i := range got {
				t.Errorf("compress=%v: %+v, want %+v", compress, got[i], vars[i])
			}
		}
	}
	// y stored as uint8 class (as some SVHN copies have it).
	v := svhnFixture(2, 2, 3, 2, func(m, i, j, k int) uint8 { return 1 }, []float64{10, 3})
	v[1] = &MATVar{Name: "y", Class: "uint8", Dims: []int{2, 1}, U8: []uint8{10, 3}}
	var buf bytes.Buffer
	WriteMAT(&buf, v, true)
	vars2, err := ReadMAT(&buf, "x.mat")
	if err != nil {
		t.Fatal(err)
	}
	im, err := SVHNImages(vars2, "train")
	if err != nil || !reflect.DeepEqual(im.Labels, []uint8{0, 3}) {
		t.Errorf("uint8 labels: %v, %v", im, err)
	}
}

// matBody builds a raw little-endian .mat file: the 128-byte header then
// the given elements.
func matFile(elements ...[]byte) []byte {
	var buf bytes.Buffer
	WriteMAT(&buf, nil, false)
	for _, e := range elements {
		buf.Write(e)
	}
	return buf.Bytes()
}

// matArray builds an miMATRIX element with the given class, flags bits,
// dimensions, name and real part (type rtyp, data real).
func matArray(class byte, flagBits uint32, dims []int32, name string, rtyp uint32, real []byte) []byte {
	var body []byte
	body = appendMATSub(body, miUINT32, binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, uint32(class)|flagBits), 0))
	var db []byte
	for _, d := range dims {
		db = binary.LittleEndian.AppendUint32(db, uint32(d))
	}
	body = appendMATSub(body, miINT32, db)
	body = appendMATSub(body, miINT8, []byte(name))
	body = appendMATSub(body, rtyp, real)
	return append(matTagBytes(miMATRIX, len(body)), body...)
}

func zlibElement(el []byte) []byte {
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(el)
	zw.Close()
	return append(matTagBytes(miCOMPRESSED, z.Len()), z.Bytes()...)
}

func TestReadMATErrors(t *testing.T) {
	good := matArray(mxUINT8_CLASS, 0, []int32{2, 3}, "X", miUINT8, []byte{1, 2, 3, 4, 5, 6})
	valid := matFile(zlibElement(good))
	v73 := matFile()
	binary.LittleEndian.PutUint16(v73[124:], 0x0200)
	badEndian := matFile()
	copy(badEndian[126:], "XX")
	corruptZ := append([]byte(nil), valid...)
	corruptZ[len(corruptZ)-10] ^= 0xff
	badSum := append([]byte(nil), valid...)
	badSum[len(badSum)-1] ^= 0xff
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "truncated: .mat header"},
		{"bad zlib checksum", badSum, "checksum"},
		{"short header", valid[:100], "truncated: .mat header"},
		{"not mat", bytes.Repeat([]byte("x"), 200), "not a MATLAB v5"},
		{"bad endian", badEndian, "endian"},
		{"v7.3", v73, "7.3"},
		{"truncated tag", valid[:132], "truncated: element 0 tag"},
		{"truncated compressed", valid[:len(valid)-4], ""},
		{"corrupt zlib", corruptZ, ""},
		{"truncated matrix", matFile(good[:len(good)-8]), "truncated"},
		{"char class", matFile(matArray(4, 0, []int32{1, 2}, "s", miUINT16, []byte{65, 0, 66, 0})), "class char"},
		{"cell class", matFile(zlibElement(matArray(1, 0, []int32{1, 1}, "c", miUINT8, []byte{1}))), "class cell"},
		{"sparse class", matFile(matArray(5, 0, []int32{1, 1}, "s", miDOUBLE, make([]byte, 8))), "class sparse"},
		{"complex", matFile(matArray(mxDOUBLE_CLASS, 0x800, []int32{1, 1}, "z", miDOUBLE, make([]byte, 8))), "complex"},
		{"dims claim more data", matFile(matArray(mxUINT8_CLASS, 0, []int32{1000, 1000}, "X", miUINT8, []byte{1, 2, 3})), "need 1000000 bytes"},
		{"dims overflow", matFile(matArray(mxUINT8_CLASS, 0, []int32{math.MaxInt32, math.MaxInt32, math.MaxInt32}, "X", miUINT8, []byte{1})), "too large"},
		{"negative dim", matFile(matArray(mxUINT8_CLASS, 0, []int32{-1, 1}, "X", miUINT8, []byte{1})), "negative"},
		{"one dim", matFile(matArray(mxUINT8_CLASS, 0, []int32{1}, "X", miUINT8, []byte{1})), "at least 2"},
		{"uint8 out of range", matFile(matArray(mxUINT8_CLASS, 0, []int32{1, 1}, "X", miINT16, []byte{0, 1})), "holds value 256"},
		{"non-numeric data", matFile(matArray(mxUINT8_CLASS, 0, []int32{1, 1}, "X", miMATRIX, []byte{1})), "non-numeric"},
		{"unknown element", matFile(matTagBytes(miDOUBLE, 8), make([]byte, 8)), "unsupported top-level data type 9"},
		{"compressed non-matrix", matFile(zlibElement(append(matTagBytes(miUINT8, 1), 1, 0, 0, 0, 0, 0, 0, 0))), "want miMATRIX"},
		{"duplicate", matFile(good, good), "duplicate variable"},
		{"element length past EOF", matFile(append(matTagBytes(miMATRIX, 1<<30), good[8:]...)), "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadMAT(bytes.NewReader(tc.data), "bad.mat")
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "reading bad.mat: ") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want one naming bad.mat and containing %q", err, tc.want)
			}
		})
	}
}

func TestSVHNErrors(t *testing.T) {
	fix := func() []*MATVar {
		return svhnFixture(2, 2, 3, 2, func(m, i, j, k int) uint8 { return 0 }, []float64{1, 2})
	}
	for _, tc := range []struct {
		name   string
		mutate func(v []*MATVar) []*MATVar
		want   string
	}{
		{"no y", func(v []*MATVar) []*MATVar { return v[:1] }, "needs variables X and y"},
		{"label 0", func(v []*MATVar) []*MATVar { v[1].F64[0] = 0; return v }, "want 1..10"},
		{"label 1.5", func(v []*MATVar) []*MATVar { v[1].F64[0] = 1.5; return v }, "want 1..10"},
		{"too few labels", func(v []*MATVar) []*MATVar { v[1].F64 = v[1].F64[:1]; v[1].Dims = []int{1, 1}; return v }, "want 2 x 1"},
		{"X double", func(v []*MATVar) []*MATVar {
			v[0] = &MATVar{Name: "X", Class: "double", Dims: []int{1, 1}, F64: []float64{1}}
			return v
		}, "want uint8"},
		{"X 5-D", func(v []*MATVar) []*MATVar { v[0].Dims = []int{2, 2, 3, 1, 2}; return v }, "H x W x C x N"},
	} {
		var buf bytes.Buffer
		if err := WriteMAT(&buf, tc.mutate(fix()), true); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "x.mat")
		os.WriteFile(path, buf.Bytes(), 0o644)
		_, err := ReadSVHNFile(path, "test")
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %v, want one naming the file and containing %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadSVHNFile(filepath.Join(t.TempDir(), "missing.mat"), "test"); err == nil {
		t.Error("missing file: no error")
	}
}

func FuzzReadMAT(f *testing.F) {
	fix := svhnFixture(2, 3, 3, 2, func(m, i, j, k int) uint8 { return uint8(i + j + k + m) }, []float64{10, 4})
	for _, compress := range []bool{false, true} {
		var buf bytes.Buffer
		WriteMAT(&buf, fix, compress)
		f.Add(buf.Bytes())
	}
	f.Add(matFile(matArray(mxDOUBLE_CLASS, 0, []int32{1, 2}, "a", miSINGLE, make([]byte, 8))))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ReadMAT(bytes.NewReader(data), "fuzz.mat")
		if err != nil {
			return
		}
		for _, v := range vars {
			n := 1
			for _, d := range v.Dims {
				n *= d
			}
			if len(v.U8)+len(v.F64) != n {
				t.Fatalf("variable %q: dims %v but %d values", v.Name, v.Dims, len(v.U8)+len(v.F64))
			}
		}
		SVHNImages(vars, "fuzz") // must not panic
	})
}
