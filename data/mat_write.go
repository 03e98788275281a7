package data

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// WriteMAT writes vars to w as a little-endian MATLAB v5 .mat file, each
// variable in its own miCOMPRESSED (zlib) element when compress is true and
// as a plain miMATRIX element otherwise. Like MATLAB, a double array whose
// values are all integers in [0, 255] is stored as miUINT8 data.
func WriteMAT(w io.Writer, vars []*MATVar, compress bool) error {
	var hdr [128]byte
	copy(hdr[:116], fmt.Sprintf("%-116s", "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created by: flowood"))
	binary.LittleEndian.PutUint16(hdr[124:], 0x0100)
	copy(hdr[126:], "IM")
	bw := bufio.NewWriter(w)
	bw.Write(hdr[:])
	for _, v := range vars {
		el, err := encodeMATArray(v)
		if err != nil {
			return fmt.Errorf("writing mat variable %q: %w", v.Name, err)
		}
		if compress {
			var z bytes.Buffer
			zw := zlib.NewWriter(&z)
			zw.Write(el)
			zw.Close()
			bw.Write(matTagBytes(miCOMPRESSED, z.Len()))
			bw.Write(z.Bytes())
		} else {
			bw.Write(el)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing mat file: %w", err)
	}
	return nil
}

func matTagBytes(typ uint32, n int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, typ)
	return binary.LittleEndian.AppendUint32(b, uint32(n))
}

// appendMATSub appends a padded sub-element, in the small format when its
// data fit in 4 bytes.
func appendMATSub(b []byte, typ uint32, data []byte) []byte {
	if len(data) <= 4 && len(data) > 0 {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(data))<<16|typ)
		var pad [4]byte
		copy(pad[:], data)
		return append(b, pad[:]...)
	}
	b = append(b, matTagBytes(typ, len(data))...)
	b = append(b, data...)
	return append(b, make([]byte, (8-len(data)%8)%8)...)
}

// encodeMATArray encodes v as a complete miMATRIX element.
func encodeMATArray(v *MATVar) ([]byte, error) {
	if len(v.Dims) < 2 {
		return nil, fmt.Errorf("MATLAB arrays have at least 2 dimensions, have %v", v.Dims)
	}
	count := 1
	var dimb []byte
	for _, d := range v.Dims {
		if d < 0 || d > math.MaxInt32 {
			return nil, fmt.Errorf("bad dimension %d", d)
		}
		count *= d
		dimb = binary.LittleEndian.AppendUint32(dimb, uint32(d))
	}
	var class byte
	var rtyp uint32
	var real []byte
	switch v.Class {
	case "uint8":
		if len(v.U8) != count {
			return nil, fmt.Errorf("dimensions %v need %d values, have %d", v.Dims, count, len(v.U8))
		}
		class, rtyp, real = mxUINT8_CLASS, miUINT8, v.U8
	case "double":
		if len(v.F64) != count {
			return nil, fmt.Errorf("dimensions %v need %d values, have %d", v.Dims, count, len(v.F64))
		}
		class, rtyp = mxDOUBLE_CLASS, miUINT8
		for _, x := range v.F64 {
			if x != math.Trunc(x) || x < 0 || x > 255 {
				rtyp = miDOUBLE
				break
			}
		}
		for _, x := range v.F64 {
			if rtyp == miUINT8 {
				real = append(real, uint8(x))
			} else {
				real = binary.LittleEndian.AppendUint64(real, math.Float64bits(x))
			}
		}
	default:
		return nil, fmt.Errorf("unsupported class %q", v.Class)
	}
	var body []byte
	body = appendMATSub(body, miUINT32, binary.LittleEndian.AppendUint32([]byte{class, 0, 0, 0}, 0))
	body = appendMATSub(body, miINT32, dimb)
	body = appendMATSub(body, miINT8, []byte(v.Name))
	if len(real) == 0 {
		body = append(body, matTagBytes(rtyp, 0)...)
	} else {
		body = appendMATSub(body, rtyp, real)
	}
	return append(matTagBytes(miMATRIX, len(body)), body...), nil
}
