package data

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strings"

	"github.com/flowood/flowood/internal/atomicfile"
)

// The idx magic number is two zero bytes, a data type code (0x08 for
// unsigned bytes) and the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
)

const (
	// maxIDXBytes bounds the payload size that an idx header may declare, so
	// that a corrupt header is reported instead of attempting a huge read.
	maxIDXBytes = 1 << 36
	// preallocBytes is the largest payload allocated up front; larger ones
	// grow as data arrives, so a header that lies about its size costs no
	// more memory than the data actually present.
	preallocBytes = 64 << 20
)

// ReadIDXImages decodes an idx3 image file (magic 0x00000803: unsigned
// bytes, N x H x W) from r. The stream may be gzip-compressed, which is
// detected from its first two bytes (0x1f 0x8b). The result has C = 1 and no
// labels. ReadIDXImages rejects a wrong magic number, zero image dimensions,
// and a stream that is shorter or longer than its header says.
func ReadIDXImages(r io.Reader) (*Images, error) {
	dims, pix, err := readIDX(r, idxImagesMagic, "an image file", "pixels")
	if err != nil {
		return nil, err
	}
	return &Images{N: dims[0], H: dims[1], W: dims[2], C: 1, Pix: pix}, nil
}

// ReadIDXLabels decodes an idx1 label file (magic 0x00000801: unsigned
// bytes, N) from r, gzip-compressed or raw, with the same checks as
// ReadIDXImages.
func ReadIDXLabels(r io.Reader) ([]uint8, error) {
	_, labels, err := readIDX(r, idxLabelsMagic, "a label file", "labels")
	return labels, err
}

// ReadIDXImagesFile reads an idx3 image file with ReadIDXImages. Errors name
// the file. The result's Source is path.
func ReadIDXImagesFile(path string) (*Images, error) {
	var im *Images
	err := readFile(path, func(r io.Reader) (err error) {
		im, err = ReadIDXImages(r)
		return err
	})
	if err != nil {
		return nil, err
	}
	im.Source = path
	return im, nil
}

// ReadIDXLabelsFile reads an idx1 label file with ReadIDXLabels. Errors name
// the file.
func ReadIDXLabelsFile(path string) ([]uint8, error) {
	var labels []uint8
	err := readFile(path, func(r io.Reader) (err error) {
		labels, err = ReadIDXLabels(r)
		return err
	})
	return labels, err
}

// WriteIDXImages writes im's pixels to w as an uncompressed idx3 image file.
// Only single-channel image sets (C = 1) can be written.
func WriteIDXImages(w io.Writer, im *Images) error {
	if err := im.Validate(); err != nil {
		return fmt.Errorf("writing idx images: %w", err)
	}
	if im.C != 1 {
		return fmt.Errorf("writing idx images: idx3 holds single-channel images, have C=%d", im.C)
	}
	return writeIDX(w, idxImagesMagic, []int{im.N, im.H, im.W}, im.Pix)
}

// WriteIDXLabels writes labels to w as an uncompressed idx1 label file.
func WriteIDXLabels(w io.Writer, labels []uint8) error {
	return writeIDX(w, idxLabelsMagic, []int{len(labels)}, labels)
}

// WriteIDXImagesFile writes im to path as an idx3 image file, gzip-compressed
// (best compression, no name or time stamp in the header, so the output is
// reproducible) when path ends in ".gz". The file is written to a temporary
// name in the same directory and renamed into place when complete.
func WriteIDXImagesFile(path string, im *Images) error {
	return writeIDXFile(path, func(w io.Writer) error { return WriteIDXImages(w, im) })
}

// WriteIDXLabelsFile writes labels to path as an idx1 label file, compressed
// and written atomically like WriteIDXImagesFile.
func WriteIDXLabelsFile(path string, labels []uint8) error {
	return writeIDXFile(path, func(w io.Writer) error { return WriteIDXLabels(w, labels) })
}

// readFile opens path and passes a buffered reader of it to decode, naming
// the file in any error.
func readFile(path string, decode func(io.Reader) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading idx file: %w", err)
	}
	defer f.Close()
	if err := decode(bufio.NewReaderSize(f, 1<<20)); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

// isGzip reports whether b starts with the gzip magic bytes.
func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// maybeGunzip returns a reader of r's content, decompressed if r starts
// with the gzip magic bytes, and a function that releases the decompressor.
func maybeGunzip(r io.Reader) (io.Reader, bool, func(), error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(2) // A short stream is reported by the caller's reads.
	if !isGzip(head) {
		return br, false, func() {}, nil
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, true, nil, fmt.Errorf("decompressing: %w", err)
	}
	return zr, true, func() { zr.Close() }, nil
}

// readIDX decodes an idx stream of unsigned bytes whose magic number must be
// magic, returning its dimensions and payload. what describes the expected
// file kind and unit the payload elements, both for error messages.
func readIDX(r io.Reader, magic uint32, what, unit string) ([]int, []byte, error) {
	src, compressed, release, err := maybeGunzip(r)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	readErr := func(err error) error {
		if compressed {
			return fmt.Errorf("decompressing: %w", err)
		}
		return err
	}

	ndim := int(magic & 0xff)
	hdr := make([]byte, 4*(1+ndim))
	if n, err := io.ReadFull(src, hdr[:4]); err != nil {
		if isShort(err) {
			return nil, nil, fmt.Errorf("truncated: idx header needs %d bytes, got %d", len(hdr), n)
		}
		return nil, nil, readErr(err)
	}
	if got := binary.BigEndian.Uint32(hdr); got != magic {
		return nil, nil, fmt.Errorf("idx magic 0x%08x is not %s (want 0x%08x)", got, what, magic)
	}
	if n, err := io.ReadFull(src, hdr[4:]); err != nil {
		if isShort(err) {
			return nil, nil, fmt.Errorf("truncated: idx header needs %d bytes, got %d", len(hdr), 4+n)
		}
		return nil, nil, readErr(err)
	}

	dims := make([]int, ndim)
	total := uint64(1)
	for i := range dims {
		d := binary.BigEndian.Uint32(hdr[4*(i+1):])
		if i > 0 && d == 0 {
			return nil, nil, fmt.Errorf("idx dimensions %s include a zero image size", formatDims(hdr[4:]))
		}
		hi, lo := bits.Mul64(total, uint64(d))
		if hi != 0 || lo > maxIDXBytes || lo > math.MaxInt {
			return nil, nil, fmt.Errorf("idx dimensions %s are too large", formatDims(hdr[4:]))
		}
		total = lo
		dims[i] = int(d)
	}

	want := int(total)
	payload, err := readPayload(src, want)
	if err != nil {
		if isShort(err) {
			return nil, nil, fmt.Errorf("truncated: want %d bytes of %s, got %d (idx data should be %d bytes)",
				want, unit, len(payload), len(hdr)+want)
		}
		return nil, nil, readErr(err)
	}
	var extra [1]byte
	switch n, err := io.ReadFull(src, extra[:]); {
	case n > 0:
		return nil, nil, fmt.Errorf("trailing data after %d bytes of %s (idx data should be %d bytes)",
			want, unit, len(hdr)+want)
	case err != io.EOF:
		// A gzip stream reports a bad checksum only here, at its end.
		return nil, nil, readErr(err)
	}
	return dims, payload, nil
}

// readPayload reads exactly want bytes from r. Up to preallocBytes are
// allocated at once, then the buffer doubles as data keeps arriving. On a
// short read it returns the bytes read and io.ErrUnexpectedEOF or io.EOF.
func readPayload(r io.Reader, want int) ([]byte, error) {
	buf := make([]byte, min(want, preallocBytes))
	n := 0
	for {
		m, err := io.ReadFull(r, buf[n:])
		n += m
		if err != nil {
			return buf[:n], err
		}
		if n == want {
			return buf, nil
		}
		grown := make([]byte, min(want, 2*len(buf)))
		copy(grown, buf)
		buf = grown
	}
}

// isShort reports whether err means the stream ended early.
func isShort(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// formatDims renders big-endian uint32 dimensions as "AxBxC".
func formatDims(b []byte) string {
	parts := make([]string, len(b)/4)
	for i := range parts {
		parts[i] = fmt.Sprint(binary.BigEndian.Uint32(b[4*i:]))
	}
	return strings.Join(parts, "x")
}

// writeIDX writes an idx header with the given magic number and dimensions,
// followed by payload.
func writeIDX(w io.Writer, magic uint32, dims []int, payload []byte) error {
	hdr := make([]byte, 4*(1+len(dims)))
	binary.BigEndian.PutUint32(hdr, magic)
	for i, d := range dims {
		if d < 0 || uint64(d) > math.MaxUint32 {
			return fmt.Errorf("writing idx: dimension %d does not fit in an idx header", d)
		}
		binary.BigEndian.PutUint32(hdr[4*(i+1):], uint32(d))
	}
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("writing idx header: %w", err)
	}
	if _, err := w.Write(payload); err != nil {
		return fmt.Errorf("writing idx data: %w", err)
	}
	return nil
}

// writeIDXFile writes an idx file atomically with encode, through a gzip
// compressor when path ends in ".gz".
func writeIDXFile(path string, encode func(io.Writer) error) error {
	err := atomicfile.Write(path, func(f *os.File) error {
		bw := bufio.NewWriterSize(f, 1<<20)
		if strings.HasSuffix(path, ".gz") {
			zw, err := gzip.NewWriterLevel(bw, gzip.BestCompression)
			if err != nil {
				return err
			}
			if err := encode(zw); err != nil {
				return err
			}
			if err := zw.Close(); err != nil {
				return fmt.Errorf("compressing: %w", err)
			}
		} else if err := encode(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
