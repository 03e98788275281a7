package data

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strings"
)

// MATLAB v5 data types (the type field of a data element's tag).
const (
	miINT8       = 1
	miUINT8      = 2
	miINT16      = 3
	miUINT16     = 4
	miINT32      = 5
	miUINT32     = 6
	miSINGLE     = 7
	miDOUBLE     = 9
	miINT64      = 12
	miUINT64     = 13
	miMATRIX     = 14
	miCOMPRESSED = 15
	miUTF8       = 16
)

// MATLAB array classes (the low byte of an array's flags).
const (
	mxDOUBLE_CLASS = 6
	mxUINT8_CLASS  = 9
)

// maxMATBytes bounds the size of any array a .mat file may declare.
const maxMATBytes = 1 << 32

var matClassNames = map[byte]string{
	1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single",
	8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64", 15: "uint64",
}

// matTypeSize gives the element size of the numeric MATLAB data types.
var matTypeSize = map[uint32]int{
	miINT8: 1, miUINT8: 1, miINT16: 2, miUINT16: 2, miINT32: 4, miUINT32: 4,
	miSINGLE: 4, miDOUBLE: 8, miINT64: 8, miUINT64: 8,
}

// MATVar is a numeric variable of a MATLAB v5 .mat file: a real, non-sparse
// array of class uint8 or double. Its values are in MATLAB's column-major
// order: the first dimension varies fastest.
type MATVar struct {
	Name string
	// Class is "uint8" or "double".
	Class string
	// Dims holds the array's dimensions, at least two as in MATLAB.
	Dims []int
	U8   []uint8   // Class "uint8"
	F64  []float64 // Class "double"
}

// ReadMAT decodes the variables of a MATLAB v5 .mat file (as written by
// MATLAB's save with -v6 or -v7, little- or big-endian) from r. It handles
// zlib-compressed elements (miCOMPRESSED) and real numeric arrays
// (miMATRIX) of class uint8 or double, whose values may be stored in any
// numeric MATLAB type as MATLAB does to save space; cell, struct, char,
// sparse, complex and other classes, v4 and v7.3 (HDF5) files are errors.
// Memory grows with the data actually read. name is used in error messages.
func ReadMAT(r io.Reader, name string) ([]*MATVar, error) {
	vars, err := readMAT(r)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return vars, nil
}

// ReadMATFile reads a .mat file with ReadMAT; errors name the file.
func ReadMATFile(path string) ([]*MATVar, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading mat file: %w", err)
	}
	defer f.Close()
	return ReadMAT(bufio.NewReaderSize(f, 1<<20), path)
}

func readMAT(r io.Reader) ([]*MATVar, error) {
	var hdr [128]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if isShort(err) {
			return nil, fmt.Errorf("truncated: .mat header needs 128 bytes, got %d", n)
		}
		return nil, err
	}
	var bo binary.ByteOrder
	switch string(hdr[126:128]) {
	case "IM":
		bo = binary.LittleEndian
	case "MI":
		bo = binary.BigEndian
	default:
		if !bytes.HasPrefix(hdr[:], []byte("MATLAB")) {
			return nil, fmt.Errorf("not a MATLAB v5 .mat file (no \"MATLAB\" header text or endian indicator; v4 files are not supported)")
		}
		return nil, fmt.Errorf("bad .mat endian indicator %q", hdr[126:128])
	}
	switch v := bo.Uint16(hdr[124:126]); v {
	case 0x0100:
	case 0x0200:
		return nil, fmt.Errorf(".mat file is version 7.3 (HDF5), which is not supported; save with -v7")
	default:
		return nil, fmt.Errorf("unsupported .mat version 0x%04x", v)
	}
	var vars []*MATVar
	seen := map[string]bool{}
	for i := 0; ; i++ {
		var tag [8]byte
		n, err := io.ReadFull(r, tag[:])
		if err == io.EOF {
			return vars, nil
		}
		if err != nil {
			if isShort(err) {
				return nil, fmt.Errorf("truncated: element %d tag needs 8 bytes, got %d", i, n)
			}
			return nil, err
		}
		typ, nbytes := bo.Uint32(tag[:]), bo.Uint32(tag[4:])
		if typ>>16 != 0 {
			return nil, fmt.Errorf("element %d: unexpected small data element at top level", i)
		}
		body := &io.LimitedReader{R: r, N: int64(nbytes)}
		var v *MATVar
		switch typ {
		case miCOMPRESSED:
			zr, err := zlib.NewReader(body)
			if err != nil {
				return nil, fmt.Errorf("element %d: decompressing: %w", i, err)
			}
			v, err = readMATElement(zr, bo)
			if err == nil {
				// Reach the end of the zlib stream so that its checksum is
				// verified, and reject data after the one element.
				var extra [1]byte
				if m, e := io.ReadFull(zr, extra[:]); m > 0 {
					err = fmt.Errorf("data after the array in compressed element")
				} else if e != io.EOF {
					err = fmt.Errorf("decompressing: %w", e)
				}
			}
			zr.Close()
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		case miMATRIX:
			v, err = readMATArray(body, bo, int(nbytes))
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		default:
			return nil, fmt.Errorf("element %d: unsupported top-level data type %d (want miMATRIX or miCOMPRESSED)", i, typ)
		}
		if body.N > 0 {
			if _, err := io.Copy(io.Discard, body); err != nil {
				return nil, err
			}
			if body.N > 0 {
				return nil, fmt.Errorf("truncated: element %d declares %d bytes, %d missing", i, nbytes, body.N)
			}
		}
		if typ == miMATRIX {
			if err := skipPad(r, int(nbytes)); err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
		}
		if v == nil {
			continue // an empty miMATRIX element
		}
		if seen[v.Name] {
			return nil, fmt.Errorf("duplicate variable %q", v.Name)
		}
		seen[v.Name] = true
		vars = append(vars, v)
	}
}

// skipPad reads the padding after a data element of n bytes, up to the next
// multiple of 8. Padding missing at the very end of the stream is accepted.
func skipPad(r io.Reader, n int) error {
	pad := (8 - n%8) % 8
	var b [8]byte
	if _, err := io.ReadFull(r, b[:pad]); err != nil && !isShort(err) {
		return err
	}
	return nil
}

// readMATElement reads one complete miMATRIX element, tag and all, from the
// decompressed content of an miCOMPRESSED element.
func readMATElement(r io.Reader, bo binary.ByteOrder) (*MATVar, error) {
	var tag [8]byte
	if n, err := io.ReadFull(r, tag[:]); err != nil {
		if isShort(err) {
			return nil, fmt.Errorf("truncated: compressed element tag needs 8 bytes, got %d", n)
		}
		return nil, err
	}
	typ, nbytes := bo.Uint32(tag[:]), bo.Uint32(tag[4:])
	if typ != miMATRIX {
		return nil, fmt.Errorf("compressed element holds data type %d, want miMATRIX (14)", typ)
	}
	body := &io.LimitedReader{R: r, N: int64(nbytes)}
	v, err := readMATArray(body, bo, int(nbytes))
	if err != nil {
		return nil, err
	}
	if body.N > 0 {
		return nil, fmt.Errorf("array element declares %d bytes but its parts fill only %d", nbytes, int64(nbytes)-body.N)
	}
	return v, nil
}

// readMATArray reads the parts of an miMATRIX element of n bytes: flags,
// dimensions, name and real part. It returns nil for an empty element.
func readMATArray(r io.Reader, bo binary.ByteOrder, n int) (*MATVar, error) {
	if n == 0 {
		return nil, nil
	}
	typ, flags, err := readMATSub(r, bo, 64)
	if err != nil {
		return nil, fmt.Errorf("array flags: %w", err)
	}
	if typ != miUINT32 || len(flags) != 8 {
		return nil, fmt.Errorf("array flags: want 8 bytes of miUINT32, have %d bytes of type %d", len(flags), typ)
	}
	f := bo.Uint32(flags)
	class := byte(f)
	typ, dimb, err := readMATSub(r, bo, 4*64)
	if err != nil {
		return nil, fmt.Errorf("array dimensions: %w", err)
	}
	if typ != miINT32 || len(dimb)%4 != 0 || len(dimb) < 8 {
		return nil, fmt.Errorf("array dimensions: want at least 2 miINT32 values, have %d bytes of type %d", len(dimb), typ)
	}
	dims := make([]int, len(dimb)/4)
	count := uint64(1)
	for i := range dims {
		d := int32(bo.Uint32(dimb[4*i:]))
		if d < 0 {
			return nil, fmt.Errorf("array dimensions %v: negative", dimsString(dimb, bo))
		}
		dims[i] = int(d)
		hi, lo := bits.Mul64(count, uint64(d))
		if hi != 0 || lo > maxMATBytes {
			return nil, fmt.Errorf("array dimensions %s are too large", dimsString(dimb, bo))
		}
		count = lo
	}
	typ, nameb, err := readMATSub(r, bo, 1<<16)
	if err != nil {
		return nil, fmt.Errorf("array name: %w", err)
	}
	if typ != miINT8 && typ != miUTF8 {
		return nil, fmt.Errorf("array name has data type %d, want miINT8", typ)
	}
	name := string(nameb)
	if class != mxUINT8_CLASS && class != mxDOUBLE_CLASS {
		cn := matClassNames[class]
		if cn == "" {
			cn = fmt.Sprintf("%d", class)
		}
		return nil, fmt.Errorf("variable %q has MATLAB class %s; only uint8 and double arrays are supported", name, cn)
	}
	if f&0x800 != 0 {
		return nil, fmt.Errorf("variable %q is complex; only real arrays are supported", name)
	}
	v := &MATVar{Name: name, Dims: dims}
	// The real part: peek at its tag to check its size before reading it.
	var tag [8]byte
	if m, err := io.ReadFull(r, tag[:]); err != nil {
		if isShort(err) {
			return nil, fmt.Errorf("variable %q: truncated: real part tag needs 8 bytes, got %d", name, m)
		}
		return nil, err
	}
	rtyp, rn, small, inline := matTag(tag[:], bo)
	size, ok := matTypeSize[rtyp]
	if !ok {
		return nil, fmt.Errorf("variable %q: real part has non-numeric data type %d", name, rtyp)
	}
	if uint64(rn) != count*uint64(size) {
		return nil, fmt.Errorf("variable %q: dimensions %s need %d bytes of data type %d, element holds %d",
			name, dimsString(dimb, bo), count*uint64(size), rtyp, rn)
	}
	var raw []byte
	if small {
		raw = inline
	} else {
		raw, err = readChunked(r, int(rn), 1, func(b, dst []byte) { copy(dst, b) })
		if err != nil {
			if isShort(err) {
				return nil, fmt.Errorf("variable %q: truncated: real part needs %d bytes, got %d", name, rn, len(raw))
			}
			return nil, err
		}
		if err := skipPad(r, int(rn)); err != nil {
			return nil, err
		}
	}
	switch class {
	case mxUINT8_CLASS:
		v.Class = "uint8"
		if rtyp == miUINT8 {
			v.U8 = raw
			break
		}
		v.U8 = make([]uint8, count)
		for i := range v.U8 {
			x := matValue(raw, i, rtyp, bo)
			if x != math.Trunc(x) || x < 0 || x > 255 {
				return nil, fmt.Errorf("variable %q: uint8 array holds value %v", name, x)
			}
			v.U8[i] = uint8(x)
		}
	case mxDOUBLE_CLASS:
		v.Class = "double"
		v.F64 = make([]float64, count)
		for i := range v.F64 {
			v.F64[i] = matValue(raw, i, rtyp, bo)
		}
	}
	return v, nil
}

// matTag decodes a data element tag: its type, byte count, and for the
// small data element format (byte count in the upper half of the first
// word) the up to 4 bytes of data held in the tag itself.
func matTag(tag []byte, bo binary.ByteOrder) (typ, n uint32, small bool, inline []byte) {
	w := bo.Uint32(tag)
	if w>>16 != 0 {
		n = min(w>>16, 4)
		return w & 0xffff, n, true, tag[4 : 4+n]
	}
	return w, bo.Uint32(tag[4:]), false, nil
}

// readMATSub reads a small sub-element (flags, dimensions or name) of at
// most limit bytes, with its padding.
func readMATSub(r io.Reader, bo binary.ByteOrder, limit int) (uint32, []byte, error) {
	var tag [8]byte
	if m, err := io.ReadFull(r, tag[:]); err != nil {
		if isShort(err) {
			return 0, nil, fmt.Errorf("truncated: tag needs 8 bytes, got %d", m)
		}
		return 0, nil, err
	}
	typ, n, small, inline := matTag(tag[:], bo)
	if small {
		return typ, append([]byte(nil), inline...), nil
	}
	if n > uint32(limit) {
		return 0, nil, fmt.Errorf("%d bytes is too long (limit %d)", n, limit)
	}
	b := make([]byte, n+uint32((8-n%8)%8))
	if m, err := io.ReadFull(r, b); err != nil {
		if isShort(err) {
			return 0, nil, fmt.Errorf("truncated: want %d bytes, got %d", len(b), m)
		}
		return 0, nil, err
	}
	return typ, b[:n], nil
}

// matValue returns value i of raw data of MATLAB type typ as a float64.
func matValue(raw []byte, i int, typ uint32, bo binary.ByteOrder) float64 {
	switch typ {
	case miINT8:
		return float64(int8(raw[i]))
	case miUINT8:
		return float64(raw[i])
	case miINT16:
		return float64(int16(bo.Uint16(raw[2*i:])))
	case miUINT16:
		return float64(bo.Uint16(raw[2*i:]))
	case miINT32:
		return float64(int32(bo.Uint32(raw[4*i:])))
	case miUINT32:
		return float64(bo.Uint32(raw[4*i:]))
	case miSINGLE:
		return float64(math.Float32frombits(bo.Uint32(raw[4*i:])))
	case miDOUBLE:
		return math.Float64frombits(bo.Uint64(raw[8*i:]))
	case miINT64:
		return float64(int64(bo.Uint64(raw[8*i:])))
	case miUINT64:
		return float64(bo.Uint64(raw[8*i:]))
	}
	return math.NaN()
}

// dimsString renders MATLAB dimensions as "AxBxC".
func dimsString(b []byte, bo binary.ByteOrder) string {
	parts := make([]string, len(b)/4)
	for i := range parts {
		parts[i] = fmt.Sprint(int32(bo.Uint32(b[4*i:])))
	}
	return strings.Join(parts, "x")
}

// SVHNImages converts the variables of an SVHN .mat file (train_32x32.mat,
// test_32x32.mat or extra_32x32.mat) to an image set: X, uint8 of
// dimensions H x W x C x N in MATLAB's column-major order, becomes NHWC
// pixels, and y, N labels 1..10 of class uint8 or double, becomes labels
// 0..9 (SVHN's label 10 is the digit 0). split is stored in the result.
func SVHNImages(vars []*MATVar, split string) (*Images, error) {
	var x, y *MATVar
	for _, v := range vars {
		switch v.Name {
		case "X":
			x = v
		case "y":
			y = v
		}
	}
	if x == nil || y == nil {
		return nil, fmt.Errorf("SVHN file needs variables X and y")
	}
	if x.Class != "uint8" {
		return nil, fmt.Errorf("SVHN variable X has class %s, want uint8", x.Class)
	}
	dims := append([]int(nil), x.Dims...)
	for len(dims) < 4 {
		dims = append(dims, 1) // MATLAB drops trailing singleton dimensions.
	}
	if len(dims) != 4 {
		return nil, fmt.Errorf("SVHN variable X has dimensions %v, want H x W x C x N", x.Dims)
	}
	h, w, c, n := dims[0], dims[1], dims[2], dims[3]
	if len(x.U8) != h*w*c*n {
		return nil, fmt.Errorf("SVHN variable X has dimensions %v but %d values", x.Dims, len(x.U8))
	}
	im := &Images{Name: "svhn", Split: split, N: n, H: h, W: w, C: c, Pix: make([]uint8, len(x.U8))}
	// Source index s = i + H*(j + W*(k + C*m)) for row i, column j,
	// channel k of image m; destination ((m*H + i)*W + j)*C + k.
	s := 0
	for m := range n {
		for k := range c {
			for j := range w {
				for i := range h {
					im.Pix[((m*h+i)*w+j)*c+k] = x.U8[s]
					s++
				}
			}
		}
	}
	ny := 1
	for _, d := range y.Dims {
		ny *= d
	}
	if ny != n || (len(y.Dims) == 2 && y.Dims[0] != 1 && y.Dims[1] != 1) {
		return nil, fmt.Errorf("SVHN variable y has dimensions %v, want %d x 1", y.Dims, n)
	}
	if len(y.U8)+len(y.F64) != n {
		return nil, fmt.Errorf("SVHN variable y has dimensions %v but %d values", y.Dims, len(y.U8)+len(y.F64))
	}
	im.Labels = make([]uint8, n)
	for i := range n {
		var l float64
		if y.Class == "uint8" {
			l = float64(y.U8[i])
		} else {
			l = y.F64[i]
		}
		if l != math.Trunc(l) || l < 1 || l > 10 {
			return nil, fmt.Errorf("SVHN label %d is %v, want 1..10", i, l)
		}
		im.Labels[i] = uint8(l) % 10
	}
	return im, nil
}

// ReadSVHNFile reads an SVHN .mat file with ReadMATFile and SVHNImages;
// errors name the file, and the result's Source is path.
func ReadSVHNFile(path, split string) (*Images, error) {
	vars, err := ReadMATFile(path)
	if err != nil {
		return nil, err
	}
	im, err := SVHNImages(vars, split)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	im.Source = path
	return im, nil
}
