package data

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pngBytes encodes an h x w RGB image whose pixel (x, y) is (v, x, y).
func pngBytes(t testing.TB, h, w int, v uint8) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetNRGBA(x, y, color.NRGBA{v, uint8(x), uint8(y), 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// jpegBytes encodes a uniform grey h x w JPEG.
func jpegBytes(t testing.TB, h, w int, v uint8) []byte {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = v
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type entry struct {
	name string
	data []byte
}

func zipBytes(t testing.TB, entries ...entry) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		w, err := zw.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(e.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func tarBytes(t testing.TB, entries ...entry) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sampleEntries is a small labelled collection: classes "cat" and "dog",
// a PNG and a JPEG, and files that are not images.
func sampleEntries(t testing.TB) []entry {
	return []entry{
		{"set/dog/b.png", pngBytes(t, 2, 3, 200)},
		{"set/cat/a.png", pngBytes(t, 2, 3, 10)},
		{"set/cat/c.JPG", jpegBytes(t, 2, 3, 128)},
		{"set/readme.txt", []byte("not an image")},
		{"set/", nil},
	}
}

// checkSample checks the result of reading sampleEntries.
func checkSample(t *testing.T, what string, im *Images, classes []string) {
	t.Helper()
	if im.N != 3 || im.H != 2 || im.W != 3 || im.C != 3 {
		t.Fatalf("%s: shape %dx%dx%dx%d, want 3x2x3x3", what, im.N, im.H, im.W, im.C)
	}
	if !slices.Equal(classes, []string{"cat", "dog"}) || !slices.Equal(im.Labels, []uint8{0, 0, 1}) {
		t.Errorf("%s: classes %v labels %v", what, classes, im.Labels)
	}
	// Entry order: set/cat/a.png, set/cat/c.JPG, set/dog/b.png.
	a, c, b := im.Image(0), im.Image(1), im.Image(2)
	// Pixel (x=2, y=1) of the PNGs is (v, 2, 1).
	if got := a[(1*3+2)*3:][:3]; !slices.Equal(got, []uint8{10, 2, 1}) {
		t.Errorf("%s: a.png pixel (2,1) = %v", what, got)
	}
	if got := b[:3]; !slices.Equal(got, []uint8{200, 0, 0}) {
		t.Errorf("%s: b.png pixel (0,0) = %v", what, got)
	}
	for _, v := range c {
		if v < 126 || v > 130 {
			t.Errorf("%s: grey JPEG value %d, want about 128", what, v)
			break
		}
	}
}

func TestReadImageArchiveForms(t *testing.T) {
	dir := t.TempDir()
	entries := sampleEntries(t)
	zipPath := filepath.Join(dir, "s.zip")
	os.WriteFile(zipPath, zipBytes(t, entries...), 0o644)
	tarPath := filepath.Join(dir, "s.tar")
	tb := tarBytes(t, entries[:4]...)
	os.WriteFile(tarPath, tb, 0o644)
	tgzPath := filepath.Join(dir, "s.tar.gz")
	os.WriteFile(tgzPath, gzipBytes(t, tb), 0o644)
	folder := filepath.Join(dir, "folder")
	for _, e := range entries[:4] {
		p := filepath.Join(folder, filepath.FromSlash(e.name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, e.data, 0o644)
	}
	for _, p := range []string{zipPath, tarPath, tgzPath, folder} {
		im, classes, err := ReadImageArchive(p, ArchiveOptions{})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		checkSample(t, filepath.Base(p), im, classes)
		if im.Source != p {
			t.Errorf("Source %q, want %q", im.Source, p)
		}
	}
	// Options: Dir, required size, fixed classes, no labels.
	im, _, err := ReadImageArchive(zipPath, ArchiveOptions{Dir: "set/dog", H: 2, W: 3})
	if err != nil || im.N != 1 || im.Labels[0] != 0 {
		t.Errorf("Dir set/dog: %v, %+v", err, im)
	}
	im, classes, err := ReadImageArchive(zipPath, ArchiveOptions{Classes: []string{"ant", "cat", "dog"}})
	if err != nil || !slices.Equal(im.Labels, []uint8{1, 1, 2}) || len(classes) != 3 {
		t.Errorf("fixed classes: %v, %v", err, im.Labels)
	}
	im, _, err = ReadImageArchive(zipPath, ArchiveOptions{NoLabels: true})
	if err != nil || im.Labels != nil || im.N != 3 {
		t.Errorf("NoLabels: %v", err)
	}
}

func TestReadImageArchiveErrors(t *testing.T) {
	good := zipBytes(t, sampleEntries(t)...)
	png23 := pngBytes(t, 2, 3, 1)
	jpg := jpegBytes(t, 8, 8, 50)
	cases := []struct {
		name string
		file string // archive file name
		data []byte
		opts ArchiveOptions
		want string
	}{
		{"truncated zip", "t.zip", good[:len(good)/2], ArchiveOptions{}, "zip"},
		{"not a zip", "t.zip", []byte("hello"), ArchiveOptions{}, "zip"},
		{"zip slip", "t.zip", zipBytes(t, entry{"a/b.png", png23}, entry{"../evil.png", png23}), ArchiveOptions{}, `"../evil.png"`},
		{"zip slip inside", "t.zip", zipBytes(t, entry{"a/../../evil.png", png23}), ArchiveOptions{}, "evil.png"},
		{"absolute name", "t.zip", zipBytes(t, entry{"/etc/x.png", png23}), ArchiveOptions{}, `"/etc/x.png"`},
		{"backslash name", "t.zip", zipBytes(t, entry{`..\x.png`, png23}), ArchiveOptions{}, `x.png`},
		{"bad JPEG", "t.zip", zipBytes(t, entry{"c/x.jpg", jpg[:len(jpg)/2]}), ArchiveOptions{}, "entry c/x.jpg"},
		{"not an image", "t.zip", zipBytes(t, entry{"c/x.png", []byte("garbage garbage")}), ArchiveOptions{}, "entry c/x.png"},
		{"wrong size", "t.zip", zipBytes(t, entry{"c/x.png", png23}), ArchiveOptions{H: 3, W: 2}, "entry c/x.png: image is 2x3 (height x width), want 3x2"},
		{"mixed sizes", "t.zip", zipBytes(t, entry{"c/x.png", png23}, entry{"c/y.jpg", jpg}), ArchiveOptions{}, "entry c/y.jpg: image is 8x8"},
		{"decode error before a header error", "t.zip", zipBytes(t, entry{"c/a.jpg", jpg[:len(jpg)/2]}, entry{"c/b.png", png23}), ArchiveOptions{}, "entry c/a.jpg"},
		{"no images", "t.zip", zipBytes(t, entry{"a.txt", []byte("x")}), ArchiveOptions{}, "no JPEG or PNG images"},
		{"unknown class", "t.zip", zipBytes(t, entry{"c/x.png", png23}), ArchiveOptions{Classes: []string{"d"}}, `class "c"`},
		{"tar slip", "t.tar", tarBytes(t, entry{"../x.png", png23}), ArchiveOptions{}, `"../x.png"`},
		{"truncated tar", "t.tar", tarBytes(t, entry{"c/x.png", png23})[:540], ArchiveOptions{}, "t.tar"},
		{"unknown kind", "t.rar", []byte("x"), ArchiveOptions{}, "not a folder"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+"-"+c.file)
		os.WriteFile(p, c.data, 0o644)
		_, _, err := ReadImageArchive(p, c.opts)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not name the file and %q", c.name, err, c.want)
		}
	}
}

// TestReadImageZipBomb checks that images claiming a huge size in a tiny
// file are rejected before decoding.
func TestReadImageZipBomb(t *testing.T) {
	// A 4096x4096 grey PNG compresses to a few kilobytes but decodes to
	// 48 MiB, more than 1024 times the archive.
	big := image.NewGray(image.Rect(0, 0, 4096, 4096))
	var b bytes.Buffer
	png.Encode(&b, big)
	z := zipBytes(t, entry{"c/big.png", b.Bytes()})
	_, _, err := ReadImageZip(bytes.NewReader(z), int64(len(z)), ArchiveOptions{})
	if err == nil || !strings.Contains(err.Error(), "entry c/big.png: decoding it would exceed") {
		t.Errorf("err = %v", err)
	}
}

func FuzzReadImageZip(f *testing.F) {
	f.Add(zipBytes(f, sampleEntries(f)...))
	f.Add(zipBytes(f, entry{"c/x.png", pngBytes(f, 2, 3, 1)}, entry{"d/y.jpg", jpegBytes(f, 2, 3, 9)}))
	f.Add(zipBytes(f, entry{"../x.png", pngBytes(f, 1, 1, 1)}))
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, _, err := ReadImageZip(bytes.NewReader(b), int64(len(b)), ArchiveOptions{})
		checkFuzzedArchive(t, im, err, len(b))
	})
}

// checkFuzzedArchive checks what an archive reader made of n fuzzed
// bytes: an error, or valid images decoded within the allowed ratio.
func checkFuzzedArchive(t *testing.T, im *Images, err error, n int) {
	if err != nil {
		return
	}
	if err := im.Validate(); err != nil {
		t.Fatal(err)
	}
	if int64(len(im.Pix)) > maxDecodedRatio*int64(n) {
		t.Fatalf("decoded %d bytes from %d", len(im.Pix), n)
	}
}

func FuzzReadImageTar(f *testing.F) {
	var files []entry
	for _, e := range sampleEntries(f) {
		if !strings.HasSuffix(e.name, "/") {
			files = append(files, e)
		}
	}
	f.Add(tarBytes(f, files...))
	f.Add(tarBytes(f, entry{"valid_64x64/1.png", pngBytes(f, 4, 4, 1)}, entry{"valid_64x64/2.png", pngBytes(f, 4, 4, 2)}))
	f.Add(tarBytes(f, entry{"../x.png", pngBytes(f, 1, 1, 1)}))
	f.Add([]byte("ustar"))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, _, err := ReadImageTar(bytes.NewReader(b), int64(len(b)), ArchiveOptions{})
		checkFuzzedArchive(t, im, err, len(b))
	})
}

// TestReadImageZipParallelOrder checks that images decoded on the pool
// keep their entries' order and pixels, and that the first failing entry
// in reading order is the one reported, with many entries in flight.
func TestReadImageZipParallelOrder(t *testing.T) {
	var good []entry
	for i := range 60 {
		// entries written in reverse name order: the result is sorted
		good = append(good, entry{fmt.Sprintf("c/%03d.png", 59-i), pngBytes(t, 4, 5, uint8(59-i))})
	}
	b := zipBytes(t, good...)
	im, _, err := ReadImageZip(bytes.NewReader(b), int64(len(b)), ArchiveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 60 {
		t.Fatalf("%d images, want 60", im.N)
	}
	for i := range 60 {
		// pixel (x, y) of image i is (i, x, y)
		for y := range 4 {
			for x := range 5 {
				o := i*im.Dim() + (y*5+x)*3
				if got := im.Pix[o : o+3]; got[0] != uint8(i) || got[1] != uint8(x) || got[2] != uint8(y) {
					t.Fatalf("image %d pixel (%d, %d) is %v, want [%d %d %d]", i, x, y, got, i, x, y)
				}
			}
		}
	}
	jpg := jpegBytes(t, 4, 5, 9)
	bad := append([]entry(nil), good...)
	bad[30] = entry{"c/bad30.jpg", jpg[:len(jpg)/2]}
	bad[45] = entry{"c/bad45.jpg", jpg[:len(jpg)/2]}
	b = zipBytes(t, bad...)
	_, _, err = ReadImageZip(bytes.NewReader(b), int64(len(b)), ArchiveOptions{})
	if err == nil || !strings.Contains(err.Error(), "entry c/bad30.jpg") {
		t.Errorf("error %v, want the first bad entry in reading order, c/bad30.jpg", err)
	}
}
