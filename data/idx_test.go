package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testImages returns a deterministic single-channel image set with labels.
func testImages(n, h, w int, seed byte) *Images {
	im := &Images{N: n, H: h, W: w, C: 1, Pix: make([]uint8, n*h*w), Labels: make([]uint8, n)}
	for i := range im.Pix {
		im.Pix[i] = byte(i*37) + seed
	}
	for i := range im.Labels {
		im.Labels[i] = byte(i+int(seed)) % 10
	}
	return im
}

// idxHeader returns an idx header with the given magic number and
// dimensions.
func idxHeader(magic uint32, dims ...uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return b
}

// gzipBytes compresses b.
func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeTestFile writes b to name in a new temporary directory and returns
// its path.
func writeTestFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIDXRoundTrip(t *testing.T) {
	want := testImages(7, 5, 3, 11)
	for _, name := range []string{"x-images-idx3-ubyte", "x-images-idx3-ubyte.gz"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			imgPath := filepath.Join(dir, name)
			lblPath := filepath.Join(dir, strings.Replace(name, "images-idx3", "labels-idx1", 1))
			if err := WriteIDXImagesFile(imgPath, want); err != nil {
				t.Fatal(err)
			}
			if err := WriteIDXLabelsFile(lblPath, want.Labels); err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(imgPath)
			if err != nil {
				t.Fatal(err)
			}
			if gz := strings.HasSuffix(name, ".gz"); isGzip(raw) != gz {
				t.Errorf("file compressed = %v, want %v", isGzip(raw), gz)
			}

			got, err := ReadIDXImagesFile(imgPath)
			if err != nil {
				t.Fatal(err)
			}
			if got.N != want.N || got.H != want.H || got.W != want.W || got.C != 1 {
				t.Errorf("shape %dx%dx%dx%d, want %dx%dx%dx1", got.N, got.H, got.W, got.C, want.N, want.H, want.W)
			}
			if !bytes.Equal(got.Pix, want.Pix) {
				t.Error("pixels differ after round trip")
			}
			if got.Source != imgPath {
				t.Errorf("Source = %q, want %q", got.Source, imgPath)
			}
			labels, err := ReadIDXLabelsFile(lblPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(labels, want.Labels) {
				t.Errorf("labels = %v, want %v", labels, want.Labels)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 2 {
				t.Errorf("directory holds %d entries, want the 2 written files (no temporary files)", len(entries))
			}
		})
	}
}

func TestIDXHeaderLayout(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteIDXImages(&buf, testImages(2, 3, 4, 0)); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.Bytes()[:16], idxHeader(0x803, 2, 3, 4); !bytes.Equal(got, want) {
		t.Errorf("header % x, want % x", got, want)
	}
	if buf.Len() != 16+24 {
		t.Errorf("file is %d bytes, want 40", buf.Len())
	}
	buf.Reset()
	if err := WriteIDXLabels(&buf, []uint8{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if want := append(idxHeader(0x801, 3), 1, 2, 3); !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("label file % x, want % x", buf.Bytes(), want)
	}
}

func TestIDXEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteIDXImages(&buf, &Images{N: 0, H: 28, W: 28, C: 1}); err != nil {
		t.Fatal(err)
	}
	im, err := ReadIDXImages(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 0 || im.H != 28 || len(im.Pix) != 0 {
		t.Errorf("got %d images of %dx%d", im.N, im.H, im.W)
	}
}

func TestWriteIDXRejects(t *testing.T) {
	var buf bytes.Buffer
	rgb := &Images{N: 1, H: 1, W: 1, C: 3, Pix: []uint8{1, 2, 3}}
	if err := WriteIDXImages(&buf, rgb); err == nil || !strings.Contains(err.Error(), "single-channel") {
		t.Errorf("writing 3-channel images: err = %v, want a single-channel error", err)
	}
	short := &Images{N: 2, H: 2, W: 2, C: 1, Pix: make([]uint8, 7)}
	if err := WriteIDXImages(&buf, short); err == nil || !strings.Contains(err.Error(), "needs 8 pixel values, have 7") {
		t.Errorf("writing inconsistent images: err = %v", err)
	}
}

func TestReadIDXErrors(t *testing.T) {
	good := append(idxHeader(0x803, 2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8)
	var gzBad []byte
	{
		gzBad = gzipBytes(t, good)
		gzBad[len(gzBad)-8] ^= 0xff // corrupt the CRC-32 in the gzip trailer
	}
	mnistHeader := idxHeader(0x803, 60000, 28, 28)
	tests := []struct {
		name   string
		data   []byte
		labels bool
		want   string
	}{
		{"labels as images", append(idxHeader(0x801, 3), 1, 2, 3), false,
			"idx magic 0x00000801 is not an image file (want 0x00000803)"},
		{"images as labels", good, true,
			"idx magic 0x00000803 is not a label file (want 0x00000801)"},
		{"idx2", idxHeader(0x802, 1, 1), false,
			"idx magic 0x00000802 is not an image file (want 0x00000803)"},
		{"float type", idxHeader(0xd03, 1, 1, 1), false,
			"idx magic 0x00000d03 is not an image file (want 0x00000803)"},
		{"text", []byte("hello, world, this is not idx"), false,
			"idx magic 0x68656c6c is not an image file (want 0x00000803)"},
		{"empty", nil, false, "truncated: idx header needs 16 bytes, got 0"},
		{"short magic", []byte{0, 0}, false, "truncated: idx header needs 16 bytes, got 2"},
		{"short header", idxHeader(0x803, 60000, 28), false, "truncated: idx header needs 16 bytes, got 12"},
		{"truncated pixels", append(mnistHeader, make([]byte, 1000)...), false,
			"truncated: want 47040000 bytes of pixels, got 1000 (idx data should be 47040016 bytes)"},
		{"truncated gzip pixels", gzipBytes(t, append(mnistHeader, make([]byte, 1000)...)), false,
			"truncated: want 47040000 bytes of pixels, got 1000 (idx data should be 47040016 bytes)"},
		{"truncated gzip stream", gzipBytes(t, good)[:20], false, "truncated:"},
		{"truncated labels", append(idxHeader(0x801, 10), 1, 2), true,
			"truncated: want 10 bytes of labels, got 2 (idx data should be 18 bytes)"},
		{"trailing data", append(slices.Clone(good), 9), false,
			"trailing data after 8 bytes of pixels (idx data should be 24 bytes)"},
		{"zero width", idxHeader(0x803, 5, 28, 0), false,
			"idx dimensions 5x28x0 include a zero image size"},
		{"huge", idxHeader(0x803, 0xffffffff, 0xffffffff, 0xffffffff), false,
			"idx dimensions 4294967295x4294967295x4294967295 are too large"},
		{"gzip checksum", gzBad, false, "decompressing: gzip: invalid checksum"},
		{"gzip header", []byte{0x1f, 0x8b, 1, 2, 3}, false, "decompressing:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTestFile(t, "train-images-idx3-ubyte.gz", tt.data)
			var err error
			if tt.labels {
				_, err = ReadIDXLabelsFile(p)
			} else {
				_, err = ReadIDXImagesFile(p)
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			prefix := "reading " + p + ": "
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nwant %q", err, prefix+tt.want)
			}
		})
	}
}

func TestReadIDXMissingFile(t *testing.T) {
	_, err := ReadIDXImagesFile(filepath.Join(t.TempDir(), "nope.gz"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want one wrapping os.ErrNotExist", err)
	}
}

// FuzzReadIDX checks that no input makes the readers panic and that what they
// accept is consistent.
func FuzzReadIDX(f *testing.F) {
	var buf bytes.Buffer
	WriteIDXImages(&buf, testImages(2, 3, 2, 1))
	f.Add(buf.Bytes())
	f.Add(append(idxHeader(0x801, 3), 1, 2, 3))
	f.Add(idxHeader(0x803, 60000, 28, 28))
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if im, err := ReadIDXImages(bytes.NewReader(b)); err == nil {
			if err := im.Validate(); err != nil {
				t.Errorf("accepted inconsistent images: %v", err)
			}
		}
		if labels, err := ReadIDXLabels(bytes.NewReader(b)); err == nil && len(b) < 8+len(labels) {
			t.Errorf("read %d labels from %d bytes", len(labels), len(b))
		}
	})
}
