package data

import (
	"archive/zip"
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The .npy/.npz reader and writer are written here rather than taken from
// codeberg.org/sbinet/npyio: files come from the internet and user
// folders, and this reader bounds what a header can make it allocate
// (a header declaring a huge shape costs no more than the bytes present:
// readChunked; header and payload limits below), reads only the dtypes
// flowood uses, with errors naming the file and member, and is fuzzed in
// CI (FuzzReadNPY). Adopting npyio would mean showing it gives the same
// guarantees against hostile headers (not checked here); the reader is
// small, tested against NumPy-written fixtures, and fuzzed.

// npyMagic starts every .npy file; a major and a minor version byte follow.
const npyMagic = "\x93NUMPY"

const (
	// maxNPYBytes bounds the payload size that a .npy header may declare.
	maxNPYBytes = 1 << 36
	// maxNPYHeader bounds the header length; NumPy itself refuses headers
	// longer than 10000 bytes unless told otherwise.
	maxNPYHeader = 1 << 20
	// npyChunk is the size of the blocks in which payloads are decoded, so
	// that a header that lies about its size costs no more memory than the
	// data actually present.
	npyChunk = 1 << 16
)

// Array is an n-dimensional NumPy array read from a .npy file or an .npz
// member. Exactly one of the typed slices holds the values, in C (row-major)
// order, according to DType.
type Array struct {
	// Name is the array's key in an .npz archive ("x" for member "x.npy"),
	// or the name given to ReadNPY.
	Name string
	// DType is the array's NumPy type descriptor: "<f4", "<f8", "|u1",
	// "<i4" or "<i8".
	DType string
	// Shape holds the dimensions; an empty shape is a scalar holding one
	// value.
	Shape []int

	F32 []float32 // DType "<f4"
	F64 []float64 // DType "<f8"
	U8  []uint8   // DType "|u1"
	I32 []int32   // DType "<i4"
	I64 []int64   // DType "<i8"
}

// npyItemSize maps the supported type descriptors to their element sizes.
var npyItemSize = map[string]int{"<f4": 4, "<f8": 8, "|u1": 1, "<u1": 1, "<i4": 4, "<i8": 8}

// Len returns the number of values, the product of Shape.
func (a *Array) Len() int {
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	return n
}

// Float64 returns the values converted to float64. For a "<f8" array the
// result is a.F64 itself; otherwise it is a new slice.
func (a *Array) Float64() []float64 {
	if a.DType == "<f8" {
		return a.F64
	}
	out := make([]float64, a.Len())
	switch a.DType {
	case "<f4":
		for i, v := range a.F32 {
			out[i] = float64(v)
		}
	case "|u1", "<u1":
		for i, v := range a.U8 {
			out[i] = float64(v)
		}
	case "<i4":
		for i, v := range a.I32 {
			out[i] = float64(v)
		}
	case "<i8":
		for i, v := range a.I64 {
			out[i] = float64(v)
		}
	}
	return out
}

// Tabular returns a 2-D array as a table of Shape[0] rows and Shape[1]
// features, converted to float64, without labels. It is an error if the
// array is not 2-D or holds a NaN or infinite value.
func (a *Array) Tabular(name, split string) (*Tabular, error) {
	if len(a.Shape) != 2 {
		return nil, fmt.Errorf("array %q has shape %s, want 2 dimensions (rows x features)", a.Name, shapeString(a.Shape))
	}
	t := &Tabular{Name: name, Split: split, N: a.Shape[0], D: a.Shape[1], X: a.Float64()}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("array %q: %w", a.Name, err)
	}
	return t, nil
}

// ReadNPY decodes a .npy file (format version 1, 2 or 3) from r. Supported
// are little-endian arrays of dtype <f4, <f8, |u1, <i4 or <i8 in C order;
// big-endian, structured or object arrays and fortran_order True are
// errors, as are a stream shorter or longer than its header says. Memory
// grows with the data actually read, so a header that claims a huge shape
// costs no more than the bytes present. name is used in error messages and
// as the result's Name.
func ReadNPY(r io.Reader, name string) (*Array, error) {
	a, err := readNPY(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	a.Name = name
	return a, nil
}

// ReadNPYFile reads a .npy file with ReadNPY; errors name the file, and the
// result's Name is the file's base name without ".npy".
func ReadNPYFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading npy file: %w", err)
	}
	defer f.Close()
	a, err := ReadNPY(bufio.NewReaderSize(f, 1<<20), path)
	if err != nil {
		return nil, err
	}
	a.Name = strings.TrimSuffix(filepath.Base(path), ".npy")
	return a, nil
}

// ReadNPZ reads an .npz archive (a zip of .npy members, stored or deflated,
// as written by numpy.savez and numpy.savez_compressed) and returns its
// arrays by key: member "x.npy" has key "x". A member whose name does not
// end in ".npy", a duplicate key, or any member that ReadNPY rejects is an
// error naming the archive and the member.
func ReadNPZ(path string) (map[string]*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading npz file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ReadNPZFrom(f, st.Size(), path)
}

// ReadNPZFrom reads an .npz archive of size bytes from ra, like ReadNPZ;
// name is used in error messages.
func ReadNPZFrom(ra io.ReaderAt, size int64, name string) (map[string]*Array, error) {
	zr, err := zip.NewReader(ra, size)
	if err != nil {
		return nil, fmt.Errorf("reading %s: not a valid npz (zip) archive: %w", name, err)
	}
	out := make(map[string]*Array, len(zr.File))
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue
		}
		key, ok := strings.CutSuffix(zf.Name, ".npy")
		if !ok {
			return nil, fmt.Errorf("reading %s: member %q is not a .npy file", name, zf.Name)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("reading %s: duplicate member %q", name, zf.Name)
		}
		if zf.UncompressedSize64 > maxNPYBytes+maxNPYHeader {
			return nil, fmt.Errorf("reading %s: member %q claims %d bytes, too large", name, zf.Name, zf.UncompressedSize64)
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("reading %s: member %q: %w", name, zf.Name, err)
		}
		a, err := readNPY(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: member %q: %w", name, zf.Name, err)
		}
		a.Name = key
		out[key] = a
	}
	return out, nil
}

// readNPY decodes one .npy stream.
func readNPY(r io.Reader) (*Array, error) {
	var pre [10]byte
	if n, err := io.ReadFull(r, pre[:8]); err != nil {
		if isShort(err) {
			return nil, fmt.Errorf("truncated: npy preamble needs 10 bytes, got %d", n)
		}
		return nil, err
	}
	if string(pre[:6]) != npyMagic {
		return nil, fmt.Errorf("bad npy magic %q (want %q)", pre[:6], npyMagic)
	}
	major, minor := pre[6], pre[7]
	var hlen uint64
	switch major {
	case 1:
		if n, err := io.ReadFull(r, pre[8:10]); err != nil {
			if isShort(err) {
				return nil, fmt.Errorf("truncated: npy preamble needs 10 bytes, got %d", 8+n)
			}
			return nil, err
		}
		hlen = uint64(binary.LittleEndian.Uint16(pre[8:10]))
	case 2, 3:
		var l [4]byte
		if n, err := io.ReadFull(r, l[:]); err != nil {
			if isShort(err) {
				return nil, fmt.Errorf("truncated: npy preamble needs 12 bytes, got %d", 8+n)
			}
			return nil, err
		}
		hlen = uint64(binary.LittleEndian.Uint32(l[:]))
	default:
		return nil, fmt.Errorf("unsupported npy format version %d.%d", major, minor)
	}
	if hlen > maxNPYHeader {
		return nil, fmt.Errorf("npy header length %d is too large (limit %d)", hlen, maxNPYHeader)
	}
	hdr, err := readChunked(r, int(hlen), 1, func(b []byte, dst []byte) { copy(dst, b) })
	if err != nil {
		if isShort(err) {
			return nil, fmt.Errorf("truncated: npy header length %d runs past the end of the data (%d bytes left)", hlen, len(hdr))
		}
		return nil, err
	}
	descr, fortran, shape, err := parseNPYHeader(string(hdr))
	if err != nil {
		return nil, err
	}
	if fortran {
		return nil, fmt.Errorf("npy array is in Fortran order; only C order is supported")
	}
	size, ok := npyItemSize[descr]
	if !ok {
		return nil, fmt.Errorf("unsupported npy dtype %q: %s", descr, dtypeHint(descr))
	}
	count := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(count, uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return nil, fmt.Errorf("npy shape %s overflows", shapeString(shape))
		}
		count = lo
	}
	if hi, lo := bits.Mul64(count, uint64(size)); hi != 0 || lo > maxNPYBytes {
		return nil, fmt.Errorf("npy shape %s of %s is too large (limit %d bytes)", shapeString(shape), descr, uint64(maxNPYBytes))
	}
	n := int(count)
	a := &Array{DType: descr, Shape: shape}
	var got int
	switch descr {
	case "<f4":
		a.F32, err = readChunked(r, n, 4, func(b []byte, dst []float32) {
			for i := range dst {
				dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
		})
		got = len(a.F32)
	case "<f8":
		a.F64, err = readChunked(r, n, 8, func(b []byte, dst []float64) {
			for i := range dst {
				dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			}
		})
		got = len(a.F64)
	case "|u1", "<u1":
		a.DType = "|u1"
		a.U8, err = readChunked(r, n, 1, func(b []byte, dst []uint8) { copy(dst, b) })
		got = len(a.U8)
	case "<i4":
		a.I32, err = readChunked(r, n, 4, func(b []byte, dst []int32) {
			for i := range dst {
				dst[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
			}
		})
		got = len(a.I32)
	case "<i8":
		a.I64, err = readChunked(r, n, 8, func(b []byte, dst []int64) {
			for i := range dst {
				dst[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
			}
		})
		got = len(a.I64)
	}
	if err != nil {
		if isShort(err) {
			return nil, fmt.Errorf("truncated: npy shape %s of %s needs %d values, got %d", shapeString(shape), descr, n, got)
		}
		return nil, err
	}
	var extra [1]byte
	switch m, err := io.ReadFull(r, extra[:]); {
	case m > 0:
		return nil, fmt.Errorf("trailing data after %d values of npy shape %s", n, shapeString(shape))
	case err != io.EOF:
		return nil, err
	}
	return a, nil
}

// dtypeHint explains why a type descriptor is not supported.
func dtypeHint(descr string) string {
	switch {
	case strings.HasPrefix(descr, ">"):
		return "big-endian arrays are not supported"
	case strings.Contains(descr, "O"):
		return "object arrays are not supported"
	case strings.HasPrefix(descr, "["):
		return "structured arrays are not supported"
	}
	return "supported are <f4, <f8, |u1, <i4 and <i8"
}

// readChunked reads n elements of size bytes each from r, decoding blocks
// of at most npyChunk bytes with decode into a slice that grows as data
// arrives. On a short read it returns the complete elements read and
// io.ErrUnexpectedEOF (or io.EOF when nothing was read).
func readChunked[T any](r io.Reader, n, size int, decode func(b []byte, dst []T)) ([]T, error) {
	per := max(1, npyChunk/size)
	out := make([]T, 0, min(n, per))
	buf := make([]byte, min(n, per)*size)
	for len(out) < n {
		k := min(per, n-len(out))
		m, err := io.ReadFull(r, buf[:k*size])
		whole := m / size
		if whole > 0 {
			start := len(out)
			out = slices.Grow(out, whole)[:start+whole]
			decode(buf[:whole*size], out[start:])
		}
		if err != nil {
			if err == io.EOF && len(out) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return out, err
		}
	}
	return out, nil
}

// shapeString renders a shape as Python does, such as "(3, 4)" or "(5,)".
func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	if len(shape) == 1 {
		return "(" + parts[0] + ",)"
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
