package data

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/flowood/flowood/internal/atomicfile"
)

// WriteNPY writes a to w as a version 1.0 .npy file (version 2.0 if the
// header does not fit), with the header padded so that the data starts at
// a multiple of 64 bytes, as NumPy does. Exactly the slice selected by
// a.DType is written; its length must equal the product of a.Shape.
func WriteNPY(w io.Writer, a *Array) error {
	var n int
	switch a.DType {
	case "<f4":
		n = len(a.F32)
	case "<f8":
		n = len(a.F64)
	case "|u1", "<u1":
		n = len(a.U8)
	case "<i4":
		n = len(a.I32)
	case "<i8":
		n = len(a.I64)
	default:
		return fmt.Errorf("writing npy: unsupported dtype %q", a.DType)
	}
	for _, d := range a.Shape {
		if d < 0 {
			return fmt.Errorf("writing npy: negative dimension in shape %v", a.Shape)
		}
	}
	if n != a.Len() {
		return fmt.Errorf("writing npy: shape %s needs %d values, have %d", shapeString(a.Shape), a.Len(), n)
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", a.DType, shapeString(a.Shape))
	var pre []byte
	pre = append(pre, npyMagic...)
	if len(dict)+1+10 <= math.MaxUint16 {
		total := (10 + len(dict) + 1 + 63) / 64 * 64
		hl := total - 10
		pre = append(pre, 1, 0, byte(hl), byte(hl>>8))
		pre = append(pre, dict...)
		pre = append(pre, bytes.Repeat([]byte{' '}, hl-len(dict)-1)...)
	} else {
		total := (12 + len(dict) + 1 + 63) / 64 * 64
		hl := total - 12
		pre = append(pre, 2, 0)
		pre = binary.LittleEndian.AppendUint32(pre, uint32(hl))
		pre = append(pre, dict...)
		pre = append(pre, bytes.Repeat([]byte{' '}, hl-len(dict)-1)...)
	}
	pre = append(pre, '\n')
	bw := bufio.NewWriter(w)
	bw.Write(pre)
	var b [8]byte
	switch a.DType {
	case "<f4":
		for _, v := range a.F32 {
			binary.LittleEndian.PutUint32(b[:], math.Float32bits(v))
			bw.Write(b[:4])
		}
	case "<f8":
		for _, v := range a.F64 {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
			bw.Write(b[:8])
		}
	case "|u1", "<u1":
		bw.Write(a.U8)
	case "<i4":
		for _, v := range a.I32 {
			binary.LittleEndian.PutUint32(b[:], uint32(v))
			bw.Write(b[:4])
		}
	case "<i8":
		for _, v := range a.I64 {
			binary.LittleEndian.PutUint64(b[:], uint64(v))
			bw.Write(b[:8])
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing npy: %w", err)
	}
	return nil
}

// WriteNPZ writes the arrays to w as an .npz archive, member "NAME.npy" for
// each array, deflated when compress is true and stored otherwise. Members
// are written in order of name, so the output is reproducible.
func WriteNPZ(w io.Writer, arrays []*Array, compress bool) error {
	sorted := append([]*Array(nil), arrays...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	zw := zip.NewWriter(w)
	method := zip.Store
	if compress {
		method = zip.Deflate
	}
	for _, a := range sorted {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: a.Name + ".npy", Method: method})
		if err != nil {
			return fmt.Errorf("writing npz: %w", err)
		}
		if err := WriteNPY(fw, a); err != nil {
			return fmt.Errorf("writing npz member %q: %w", a.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("writing npz: %w", err)
	}
	return nil
}

// WriteNPYFile writes a to path with WriteNPY, atomically.
func WriteNPYFile(path string, a *Array) error {
	err := atomicfile.Write(path, func(f *os.File) error { return WriteNPY(f, a) })
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteNPZFile writes arrays as the .npz archive at path (uncompressed),
// atomically: a crash leaves the old file or none, never half of one.
func WriteNPZFile(path string, arrays []*Array) error {
	err := atomicfile.Write(path, func(f *os.File) error { return WriteNPZ(f, arrays, false) })
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
