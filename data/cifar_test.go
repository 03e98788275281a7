package data

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// cifarBatchBytes builds a CIFAR-10 binary batch of n records: record i has
// label i%10 and channel c of pixel p holds (i + c*7 + p) % 256.
func cifarBatchBytes(n int) []byte {
	b := make([]byte, 0, n*cifarRecord)
	for i := range n {
		b = append(b, byte(i%10))
		for c := range 3 {
			for p := range 1024 {
				b = append(b, byte(i+c*7+p))
			}
		}
	}
	return b
}

func TestReadCIFARBatch(t *testing.T) {
	im, err := ReadCIFARBatch(bytes.NewReader(cifarBatchBytes(3)))
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || im.H != 32 || im.W != 32 || im.C != 3 || !slices.Equal(im.Labels, []uint8{0, 1, 2}) {
		t.Fatalf("shape %dx%dx%dx%d labels %v", im.N, im.H, im.W, im.C, im.Labels)
	}
	// Image 2, pixel p = 33 (row 1, column 1): channels (2+33, 2+7+33, 2+14+33).
	if got := im.Image(2)[33*3:][:3]; !slices.Equal(got, []uint8{35, 42, 49}) {
		t.Errorf("pixel = %v, want [35 42 49]", got)
	}
}

func TestReadCIFARBatchErrors(t *testing.T) {
	good := cifarBatchBytes(2)
	badLabel := slices.Clone(good)
	badLabel[cifarRecord] = 10
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"truncated", good[:len(good)-1], "not a whole number of 3073-byte records (1 records and 3072 bytes over)"},
		{"one byte", good[:1], "0 records and 1 bytes over"},
		{"label out of range", badLabel, "record 1: label 10"},
	}
	for _, c := range cases {
		_, err := ReadCIFARBatch(bytes.NewReader(c.data))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzReadCIFARBatch(f *testing.F) {
	f.Add(cifarBatchBytes(1))
	f.Add(cifarBatchBytes(2)[:4000])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := ReadCIFARBatch(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := im.Validate(); err != nil {
			t.Fatal(err)
		}
		if im.N*cifarRecord != len(b) {
			t.Fatalf("%d images from %d bytes", im.N, len(b))
		}
	})
}

// cifarTarball builds a cifar-10-binary.tar.gz with 10000-image batches
// (the training batches are label-shifted copies so that their order shows).
func cifarTarball(t *testing.T, skip string) []byte {
	batch := cifarBatchBytes(10000)
	var entries []entry
	entries = append(entries, entry{"cifar-10-batches-bin/batches.meta.txt", []byte("airplane\n")})
	for i, name := range append(cifarBatches("train"), "test_batch.bin") {
		if name == skip {
			continue
		}
		b := slices.Clone(batch)
		b[0] = byte(i) // first label of the batch
		entries = append(entries, entry{"cifar-10-batches-bin/" + name, b})
	}
	return gzipBytes(t, tarBytes(t, entries...))
}

func TestReadCIFARTarball(t *testing.T) {
	p := filepath.Join(t.TempDir(), "cifar-10-binary.tar.gz")
	os.WriteFile(p, cifarTarball(t, ""), 0o644)
	im, err := ReadCIFARTarball(p, "train")
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 50000 || im.Source != p {
		t.Fatalf("N = %d, Source %q", im.N, im.Source)
	}
	for i := range 5 {
		if im.Labels[i*10000] != uint8(i) {
			t.Errorf("batch %d first label %d", i+1, im.Labels[i*10000])
		}
	}
	im, err = ReadCIFARTarball(p, "test")
	if err != nil || im.N != 10000 || im.Labels[0] != 5 {
		t.Fatalf("test: %v", err)
	}

	os.WriteFile(p, cifarTarball(t, "data_batch_3.bin"), 0o644)
	if _, err := ReadCIFARTarball(p, "train"); err == nil || !strings.Contains(err.Error(), p+": no data_batch_3.bin") {
		t.Errorf("missing batch: err = %v", err)
	}
	short := gzipBytes(t, tarBytes(t, entry{"cifar-10-batches-bin/test_batch.bin", cifarBatchBytes(3)}))
	os.WriteFile(p, short, 0o644)
	if _, err := ReadCIFARTarball(p, "test"); err == nil || !strings.Contains(err.Error(), "entry cifar-10-batches-bin/test_batch.bin: 3 images, want 10000") {
		t.Errorf("short batch: err = %v", err)
	}
	os.WriteFile(p, short[:len(short)/2], 0o644)
	if _, err := ReadCIFARTarball(p, "test"); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("truncated: err = %v", err)
	}
}

// TestLoadCIFAR10Forms loads cifar10 from fixture files in both forms: the
// JPEG zip when the mirror has it, the binary tarball otherwise.
func TestLoadCIFAR10Forms(t *testing.T) {
	tgz := cifarTarball(t, "")
	var jpgEntries []entry
	for i, class := range CIFAR10Classes {
		jpgEntries = append(jpgEntries, entry{"test/" + class + "/0000.jpg", jpegBytes(t, 32, 32, uint8(20*i))})
	}
	zipData := zipBytes(t, jpgEntries...)
	forms := cifar10Forms("test", sha256Hex(zipData))
	forms[0].load = func(name, split string, paths []string, _ Options) (*Images, error) {
		// The fixture holds 10 images, not 10000.
		im, _, err := ReadImageArchive(paths[0], ArchiveOptions{H: 32, W: 32, Dir: split, Classes: CIFAR10Classes})
		return im, err
	}
	forms[1].files[0].sha256 = sha256Hex(tgz)
	forms[1].url = ""
	saved := registry["cifar10"]
	registry["cifar10"] = dataset{splits: map[string]splitFiles{"test": {forms: forms}}}
	forgetVerified()
	t.Cleanup(func() { registry["cifar10"] = saved; forgetVerified() })

	mirror, cache := t.TempDir(), t.TempDir()
	opts := Options{Mirror: mirror, CacheDir: cache, NoDownload: true}
	_, err := Load("cifar10", "test", opts)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "cifar10-jpg-test.zip (JPEG zip)") ||
		!strings.Contains(err.Error(), "cifar-10-binary.tar.gz (binary tarball)") {
		t.Errorf("nothing present: err = %v", err)
	}
	os.MkdirAll(filepath.Join(mirror, "cifar10"), 0o755)
	os.WriteFile(filepath.Join(mirror, "cifar10", "cifar-10-binary.tar.gz"), tgz, 0o644)
	im, err := Load("cifar10", "test", opts)
	if err != nil || im.N != 10000 || im.Name != "cifar10" || im.Split != "test" {
		t.Fatalf("tarball: %v", err)
	}
	os.WriteFile(filepath.Join(mirror, "cifar10", "cifar10-jpg-test.zip"), zipData, 0o644)
	im, err = Load("cifar10", "test", Options{Mirror: mirror, CacheDir: cache, NoDownload: true, Size: 16, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 10 || im.H != 16 || im.W != 16 || im.C != 1 || !slices.Equal(im.Labels, []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Errorf("JPEG zip: %dx%dx%dx%d labels %v", im.N, im.H, im.W, im.C, im.Labels)
	}
	// A corrupt preferred form is an error, not a reason to fall back.
	os.WriteFile(filepath.Join(mirror, "cifar10", "cifar10-jpg-test.zip"), zipData[:100], 0o644)
	forgetVerified()
	if _, err := Load("cifar10", "test", opts); !errors.Is(err, ErrChecksum) {
		t.Errorf("corrupt zip: err = %v, want ErrChecksum", err)
	}
}

// TestLoadRealMirrorImages loads the colour image data sets from the real
// mirror (FLOWOOD_MIRROR).
func TestLoadRealMirrorImages(t *testing.T) {
	mirror := mirrorDir(t)
	if testing.Short() {
		t.Skip("loading the full data sets is slow")
	}
	empty := t.TempDir()
	opts := Options{Mirror: mirror, CacheDir: empty, NoDownload: true}
	cases := []struct {
		name, split      string
		size             int
		n, h, w, classes int
	}{
		{"cifar10", "test", 0, 10000, 32, 32, 10},
		{"cifar10", "train", 0, 50000, 32, 32, 10},
		{"celeba", "train", 0, 10000, 109, 89, 0},
		{"celeba", "train", 32, 10000, 32, 32, 0},
		{"tinyimagenet", "val", 0, 10100, 64, 64, 202},
	}
	for _, c := range cases {
		o := opts
		o.Size = c.size
		im, err := Load(c.name, c.split, o)
		if err != nil {
			t.Fatal(err)
		}
		if im.N != c.n || im.H != c.h || im.W != c.w || im.C != 3 {
			t.Errorf("%s %s size %d: shape %dx%dx%dx%d, want %dx%dx%dx3", c.name, c.split, c.size, im.N, im.H, im.W, im.C, c.n, c.h, c.w)
		}
		r := im.Resampling
		if r.Origin == "" || r.Width != c.w || r.Height != c.h {
			t.Errorf("%s %s size %d: resampling %+v", c.name, c.split, c.size, r)
		}
		if c.name == "celeba" && c.size == 32 && (r.StoredWidth != 89 || r.StoredHeight != 109 || r.CropWidth != CelebACrop || r.Method != "area") {
			t.Errorf("celeba at 32: resampling %+v", r)
		}
		if c.size == 0 && !r.Native() {
			t.Errorf("%s %s as stored: resampling %+v", c.name, c.split, r)
		}
		if c.classes == 0 {
			if im.Labels != nil {
				t.Errorf("%s: has labels", c.name)
			}
			continue
		}
		seen := map[uint8]int{}
		for _, l := range im.Labels {
			seen[l]++
		}
		if len(im.Labels) != im.N || len(seen) != c.classes {
			t.Errorf("%s %s: %d labels of %d classes, want %d classes", c.name, c.split, len(im.Labels), len(seen), c.classes)
		}
		if c.name == "cifar10" && seen[0] != im.N/10 {
			t.Errorf("cifar10 %s: %d airplanes", c.split, seen[0])
		}
	}
}
