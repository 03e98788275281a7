package checkpoint

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// maxHeaderLen bounds the JSON header of a safetensors file, as the
// reference implementation does.
const maxHeaderLen = 100_000_000

// metadataKey is the reserved header key holding the string-to-string
// metadata.
const metadataKey = "__metadata__"

// dtypeF32 is the only dtype this package reads and writes.
const dtypeF32 = "F32"

// knownDtypes are the dtypes the safetensors format defines, used only to
// word errors about the ones this package does not read.
var knownDtypes = []string{"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16",
	"U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64",
	"F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"}

// chunkFloats is how many values are converted per buffered write or read.
const chunkFloats = 1 << 14

// FormatError reports a file that is not a valid safetensors file, or one
// holding something this package cannot read (a dtype other than F32).
type FormatError struct {
	Path string // the file
	Msg  string // what is wrong
}

// Error implements error.
func (e *FormatError) Error() string { return "checkpoint: " + e.Path + ": " + e.Msg }

// WriteSafetensors writes tensors and metadata to path in the safetensors
// format, as F32, laid out in sorted name order. The header lists the
// metadata (when there is any) first, then the tensors in name order;
// it has no insignificant whitespace apart from the trailing spaces that
// pad it to a multiple of 8 bytes. Names must be non-empty, valid UTF-8,
// unique and not "__metadata__"; metadata keys and values must be valid
// UTF-8.
//
// The file is written atomically: to a temporary file in the same
// directory that is synced and renamed onto path, after which the
// directory is synced. On error path is left unchanged.
func WriteSafetensors(path string, tensors []nn.Named, metadata map[string]string) error {
	header, order, err := buildHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("checkpoint: writing %s: %w", path, err)
	}
	err = writeFileAtomic(path, func(w *bufio.Writer) error {
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(header)))
		w.Write(n[:])
		w.Write(header)
		buf := make([]byte, 0, 4*chunkFloats)
		for _, t := range order {
			for data := t.T.Data; len(data) > 0; {
				k := min(len(data), chunkFloats)
				buf = buf[:0]
				for _, v := range data[:k] {
					buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
				}
				if _, err := w.Write(buf); err != nil {
					return err
				}
				data = data[k:]
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint: writing %s: %w", path, err)
	}
	return nil
}

// buildHeader validates tensors and metadata and returns the padded JSON
// header and the tensors in the order their data is laid out.
func buildHeader(tensors []nn.Named, metadata map[string]string) ([]byte, []nn.Named, error) {
	order := slices.Clone(tensors)
	for _, t := range order {
		switch {
		case t.Name == "":
			return nil, nil, errors.New("tensor with an empty name")
		case t.Name == metadataKey:
			return nil, nil, fmt.Errorf("tensor name %q is reserved", t.Name)
		case !utf8.ValidString(t.Name):
			return nil, nil, fmt.Errorf("tensor name %q is not valid UTF-8", t.Name)
		case t.T == nil:
			return nil, nil, fmt.Errorf("tensor %q is nil", t.Name)
		}
		n, ok := numel(t.T.Shape)
		if !ok || n != len(t.T.Data) {
			return nil, nil, fmt.Errorf("tensor %q has %d values for shape %v", t.Name, len(t.T.Data), t.T.Shape)
		}
	}
	slices.SortStableFunc(order, func(a, b nn.Named) int { return strings.Compare(a.Name, b.Name) })
	for i := 1; i < len(order); i++ {
		if order[i].Name == order[i-1].Name {
			return nil, nil, fmt.Errorf("duplicate tensor name %q", order[i].Name)
		}
	}

	var h []byte
	h = append(h, '{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k, v := range metadata {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, nil, fmt.Errorf("metadata %q: %q is not valid UTF-8", k, v)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
		h = appendJSONString(h, metadataKey)
		h = append(h, ":{"...)
		for i, k := range keys {
			if i > 0 {
				h = append(h, ',')
			}
			h = appendJSONString(h, k)
			h = append(h, ':')
			h = appendJSONString(h, metadata[k])
		}
		h = append(h, '}')
	}
	var off int64
	for i, t := range order {
		if i > 0 || len(metadata) > 0 {
			h = append(h, ',')
		}
		h = appendJSONString(h, t.Name)
		h = append(h, `:{"dtype":"F32","shape":[`...)
		for j, d := range t.T.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = fmt.Appendf(h, "%d", d)
		}
		end := off + 4*int64(len(t.T.Data))
		h = fmt.Appendf(h, `],"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	return h, order, nil
}

// appendJSONString appends s as a JSON string, escaping only what JSON
// requires.
func appendJSONString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // cannot fail for a string
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// numel returns the number of elements of shape, and false if a dimension
// is negative or the count (in bytes, as float32) overflows an int64.
func numel(shape []int) (int, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d > 0 && n > math.MaxInt64/4/int64(d) {
			return 0, false
		}
		n *= int64(d)
	}
	if n > math.MaxInt {
		return 0, false
	}
	return int(n), true
}

// ReadSafetensors reads a safetensors file holding F32 tensors and returns
// them by name, with the header's metadata (an empty map when there is
// none). It accepts any valid layout (tensors in any order in the header
// and in the data), and checks everything: the header length against the
// file size, the header is well-formed UTF-8 JSON with no duplicate keys,
// every tensor has dtype F32, a non-negative shape and in-range offsets
// whose length matches the shape, and the tensors tile the data buffer
// exactly, with no gap or overlap. A file that fails a check gives a
// *FormatError naming the file and the problem.
func ReadSafetensors(path string) (map[string]*tensor.Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, &FormatError{path, "not a regular file"}
	}
	return readSafetensors(bufio.NewReaderSize(f, 1<<16), st.Size(), path)
}

// entry is one tensor of a safetensors header.
type entry struct {
	name       string
	shape      []int
	begin, end int64 // data offsets
}

// readSafetensors decodes a safetensors file of size bytes from r; path
// names it in errors.
func readSafetensors(r io.Reader, size int64, path string) (map[string]*tensor.Tensor, map[string]string, error) {
	bad := func(format string, args ...any) error {
		return &FormatError{path, fmt.Sprintf(format, args...)}
	}
	readErr := func(what string, err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return bad("file ended while reading %s (was it changed while being read?)", what)
		}
		return fmt.Errorf("checkpoint: %s: reading %s: %w", path, what, err)
	}
	if size < 8 {
		return nil, nil, bad("file is %d bytes, too short for the 8-byte header length", size)
	}
	var nb [8]byte
	if _, err := io.ReadFull(r, nb[:]); err != nil {
		return nil, nil, readErr("the header length", err)
	}
	n := binary.LittleEndian.Uint64(nb[:])
	switch {
	case n > maxHeaderLen:
		return nil, nil, bad("header length %d exceeds the limit of %d bytes", n, maxHeaderLen)
	case n > uint64(size-8):
		return nil, nil, bad("header length %d exceeds the %d bytes that follow it (file truncated?)", n, size-8)
	case n < 2:
		return nil, nil, bad("header length %d is too short for a JSON object", n)
	}
	header := make([]byte, n)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, nil, readErr("the header", err)
	}
	entries, meta, msg := parseHeader(header)
	if msg != "" {
		return nil, nil, bad("%s", msg)
	}
	bufLen := size - 8 - int64(n)

	for _, e := range entries {
		if e.end > bufLen {
			return nil, nil, bad("tensor %q: data_offsets [%d, %d] run past the end of the %d-byte data buffer (file truncated?)", e.name, e.begin, e.end, bufLen)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		if a.begin != b.begin {
			return cmp.Compare(a.begin, b.begin)
		}
		return cmp.Compare(a.end, b.end)
	})
	var at int64
	for i, e := range entries {
		switch {
		case e.begin < at:
			return nil, nil, bad("tensor %q: data_offsets [%d, %d] overlap tensor %q", e.name, e.begin, e.end, entries[i-1].name)
		case e.begin > at:
			return nil, nil, bad("tensor %q: data_offsets [%d, %d] leave a gap of %d bytes before it", e.name, e.begin, e.end, e.begin-at)
		}
		at = e.end
	}
	if at != bufLen {
		return nil, nil, bad("tensors cover %d bytes but the data buffer has %d", at, bufLen)
	}

	out := make(map[string]*tensor.Tensor, len(entries))
	buf := make([]byte, 4*chunkFloats)
	for _, e := range entries {
		t := tensor.New(e.shape...)
		for data := t.Data; len(data) > 0; {
			k := min(len(data), chunkFloats)
			b := buf[:4*k]
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, nil, readErr(fmt.Sprintf("tensor %q", e.name), err)
			}
			for i := range data[:k] {
				data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
			data = data[k:]
		}
		out[e.name] = t
	}
	return out, meta, nil
}

// parseHeader decodes a safetensors JSON header. It returns the tensors
// with their shapes and offsets checked in isolation (not against each
// other or the file), the metadata, and a non-empty message if the header
// is invalid.
func parseHeader(header []byte) ([]entry, map[string]string, string) {
	if !utf8.Valid(header) {
		return nil, nil, "header is not valid UTF-8"
	}
	if header[0] != '{' {
		return nil, nil, "header does not start with '{'"
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	bad := func(err error) string {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "header is not valid JSON: " + err.Error()
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad(err)
	}
	meta := map[string]string{}
	var entries []entry
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, bad(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, nil, bad(fmt.Errorf("unexpected %v", tok))
		}
		if seen[key] {
			return nil, nil, fmt.Sprintf("header has key %q twice", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, bad(err)
		}
		if key == metadataKey {
			var m map[string]string
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, nil, "__metadata__ is not an object of strings: " + err.Error()
			}
			for k, v := range m {
				meta[k] = v
			}
			continue
		}
		e, msg := parseEntry(key, raw)
		if msg != "" {
			return nil, nil, msg
		}
		entries = append(entries, e)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, bad(err)
	}
	if rest := header[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return nil, nil, "header has data after its JSON object"
	}
	return entries, meta, ""
}

// parseEntry decodes the header entry of tensor name.
func parseEntry(name string, raw json.RawMessage) (entry, string) {
	e := entry{name: name}
	fail := func(format string, args ...any) (entry, string) {
		return entry{}, fmt.Sprintf("tensor %q: ", name) + fmt.Sprintf(format, args...)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return fail("header entry is not a JSON object")
	}
	var dtype *string
	var shape *[]int64
	var offsets *[]int64
	if err := json.Unmarshal(fields["dtype"], &dtype); err != nil || dtype == nil {
		return fail("dtype is missing or not a string")
	}
	if *dtype != dtypeF32 {
		if slices.Contains(knownDtypes, *dtype) {
			return fail("dtype %s is not supported (only F32 is)", *dtype)
		}
		return fail("unknown dtype %q (only F32 is supported)", *dtype)
	}
	if err := json.Unmarshal(fields["shape"], &shape); err != nil || shape == nil {
		return fail("shape is missing or not an array of integers")
	}
	if err := json.Unmarshal(fields["data_offsets"], &offsets); err != nil || offsets == nil || len(*offsets) != 2 {
		return fail("data_offsets is missing or not a pair of integers")
	}
	e.begin, e.end = (*offsets)[0], (*offsets)[1]
	if e.begin < 0 || e.end < e.begin {
		return fail("invalid data_offsets [%d, %d]", e.begin, e.end)
	}
	e.shape = make([]int, len(*shape))
	for i, d := range *shape {
		if d < 0 || d > math.MaxInt32 {
			return fail("invalid dimension %d in shape %v", d, *shape)
		}
		e.shape[i] = int(d)
	}
	n, ok := numel(e.shape)
	if !ok {
		return fail("shape %v is too large", *shape)
	}
	if 4*int64(n) != e.end-e.begin {
		return fail("shape %v needs %d bytes but data_offsets [%d, %d] span %d", *shape, 4*int64(n), e.begin, e.end, e.end-e.begin)
	}
	return e, ""
}
