package data

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// allocated returns the bytes allocated while running f.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLyingHeadersAllocateLittle checks that headers claiming gigabytes of
// data, followed by a few bytes, cost memory in proportion to those bytes.
func TestLyingHeadersAllocateLittle(t *testing.T) {
	const limit = 4 << 20
	npy := npyBytes(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000), }", make([]byte, 64))
	if n := allocated(func() { ReadNPY(bytes.NewReader(npy), "x.npy") }); n > limit {
		t.Errorf("npy claiming 8 GB: allocated %d bytes", n)
	}
	// A .mat array of 60000 x 60000 bytes, consistent with its real part's
	// tag, but with only 16 bytes of data, plain and compressed.
	el := matArray(mxUINT8_CLASS, 0, []int32{60000, 60000}, "X", miUINT8, make([]byte, 16))
	realTag := bytes.LastIndex(el, matTagBytes(miUINT8, 16))
	copy(el[realTag:], matTagBytes(miUINT8, 60000*60000))
	for _, data := range [][]byte{matFile(el), matFile(zlibElement(el))} {
		var err error
		if n := allocated(func() { _, err = ReadMAT(bytes.NewReader(data), "x.mat") }); n > limit {
			t.Errorf("mat claiming 3.6 GB: allocated %d bytes", n)
		}
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Errorf("mat claiming 3.6 GB: error %v", err)
		}
	}
}

func TestTabularFiles(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "1000_test.csv")
	os.WriteFile(csv, []byte("# label, f0, f1\n1, 0.5, 2\n0, -1, 3\n"), 0o644)
	tab, err := ReadCSVFile(csv, CSVOptions{Header: true, Label: true})
	if err != nil || tab.N != 2 || tab.D != 2 || tab.Labels[0] != 1 {
		t.Errorf("ReadCSVFile: %+v, %v", tab, err)
	}
	os.WriteFile(csv, []byte("1,x\n"), 0o644)
	if _, err := ReadCSVFile(csv, CSVOptions{}); err == nil || !strings.Contains(err.Error(), csv) {
		t.Errorf("bad csv: error %v does not name the file", err)
	}
	pid := filepath.Join(dir, "MiniBooNE_PID.txt")
	os.WriteFile(pid, []byte(miniBooNEText(1, 1)), 0o644)
	if tab, err := ReadMiniBooNERawFile(pid); err != nil || tab.N != 2 {
		t.Errorf("ReadMiniBooNERawFile: %v", err)
	}
	for _, f := range []func(string) error{
		func(p string) error { _, err := ReadCSVFile(p, CSVOptions{}); return err },
		func(p string) error { _, err := ReadMiniBooNERawFile(p); return err },
		func(p string) error { _, err := ReadNPYFile(p); return err },
		func(p string) error { _, err := ReadMATFile(p); return err },
	} {
		if err := f(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
			t.Errorf("missing file: error %v", err)
		}
	}
}
