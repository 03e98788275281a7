package data

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadEmbeddedShapes(t *testing.T) {
	want := map[string]int{
		"fashionmnist/train": 8000,
		"fashionmnist/test":  2000,
		"mnist/test":         2000,
		"notmnist/test":      2000,
	}
	if len(EmbeddedSubsets()) != len(want) {
		t.Errorf("%d embedded subsets, want %d", len(EmbeddedSubsets()), len(want))
	}
	for _, sub := range EmbeddedSubsets() {
		t.Run(sub.Name+"/"+sub.Split, func(t *testing.T) {
			im, err := LoadEmbedded(sub.Name, sub.Split)
			if err != nil {
				t.Fatal(err)
			}
			n := want[sub.Name+"/"+sub.Split]
			if im.N != n || sub.N != n || im.H != 28 || im.W != 28 || im.C != 1 || len(im.Labels) != n {
				t.Errorf("shape %dx%dx%dx%d with %d labels, want %dx28x28x1", im.N, im.H, im.W, im.C, len(im.Labels), n)
			}
			if err := im.Validate(); err != nil {
				t.Error(err)
			}
			var counts [10]int
			for _, l := range im.Labels {
				if l > 9 {
					t.Fatalf("label %d out of range", l)
				}
				counts[l]++
			}
			for l, c := range counts {
				if c == 0 {
					t.Errorf("no image of class %d in the subset", l)
				}
			}
			if im.Name != sub.Name || im.Split != sub.Split || im.Source != "embedded:"+sub.ImagesFile() {
				t.Errorf("metadata %q %q %q", im.Name, im.Split, im.Source)
			}
			viaLoad, err := Load(sub.Name, sub.Split, Options{Embedded: true, NoDownload: true})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(viaLoad.Pix, im.Pix) || !bytes.Equal(viaLoad.Labels, im.Labels) {
				t.Error("Load with Options.Embedded differs from LoadEmbedded")
			}
		})
	}
}

func TestLoadEmbeddedMissing(t *testing.T) {
	if _, err := LoadEmbedded("mnist", "train"); !errors.Is(err, ErrNotFound) {
		t.Errorf("mnist train: err = %v, want ErrNotFound", err)
	}
	if _, err := LoadEmbedded("notmnist", "train"); !errors.Is(err, ErrUnknownSplit) {
		t.Errorf("notmnist train: err = %v, want ErrUnknownSplit", err)
	}
	if _, err := LoadEmbedded("svhn9", "test"); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("svhn9: err = %v, want ErrUnknownDataset", err)
	}
}

// TestEmbeddedChecksums checks the embedded files against the SHA256SUMS
// written beside them by data/internal/gendata, and that nothing is unlisted.
func TestEmbeddedChecksums(t *testing.T) {
	sums, err := embeddedFS.ReadFile(embeddedDir + "/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(sums))
	for sc.Scan() {
		want, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("bad SHA256SUMS line %q", sc.Text())
		}
		b, err := embeddedFS.ReadFile(embeddedDir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256Hex(b); got != want {
			t.Errorf("%s: sha256 %s, want %s (regenerate with data/internal/gendata)", name, got, want)
		}
		listed[name] = true
	}
	entries, err := fs.ReadDir(embeddedFS, embeddedDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".gz") && !listed[e.Name()] {
			t.Errorf("%s is not listed in SHA256SUMS", e.Name())
		}
	}
	for _, sub := range EmbeddedSubsets() {
		if !listed[sub.ImagesFile()] || !listed[sub.LabelsFile()] {
			t.Errorf("files of %v are not listed in SHA256SUMS", sub)
		}
	}
}

// mirrorDir returns $FLOWOOD_MIRROR or skips the test.
func mirrorDir(t *testing.T) string {
	t.Helper()
	m := os.Getenv("FLOWOOD_MIRROR")
	if m == "" {
		t.Skip("FLOWOOD_MIRROR is not set; skipping the comparison with the real data")
	}
	return m
}

// TestEmbeddedMatchesMirror checks that each embedded subset is exactly the
// first N images and labels of the real file in the mirror.
func TestEmbeddedMatchesMirror(t *testing.T) {
	mirror := mirrorDir(t)
	for _, sub := range EmbeddedSubsets() {
		t.Run(sub.Name+"/"+sub.Split, func(t *testing.T) {
			prefix := map[string]string{"train": "train", "test": "t10k"}[sub.Split]
			real, err := ReadIDXImagesFile(filepath.Join(mirror, sub.Name, prefix+"-images-idx3-ubyte.gz"))
			if err != nil {
				t.Fatal(err)
			}
			labels, err := ReadIDXLabelsFile(filepath.Join(mirror, sub.Name, prefix+"-labels-idx1-ubyte.gz"))
			if err != nil {
				t.Fatal(err)
			}
			emb, err := LoadEmbedded(sub.Name, sub.Split)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(emb.Image(0), real.Image(0)) {
				t.Error("first embedded image differs from the first image of the real file")
			}
			if !bytes.Equal(emb.Pix, real.Pix[:len(emb.Pix)]) || !bytes.Equal(emb.Labels, labels[:emb.N]) {
				t.Errorf("embedded subset is not the first %d images and labels of the real file", emb.N)
			}
		})
	}
}

// TestLoadRealMirror loads every registered split from the real mirror,
// checking the recorded digests and the published shapes.
func TestLoadRealMirror(t *testing.T) {
	mirror := mirrorDir(t)
	if testing.Short() {
		t.Skip("loading the full data sets is slow")
	}
	empty := t.TempDir()
	opts := Options{Mirror: mirror, CacheDir: empty, DebianDir: empty, NoDownload: true}
	for _, name := range Names() {
		if !isIDX(registry[name]) {
			continue // see TestLoadRealMirrorImages
		}
		splits, _ := Splits(name)
		for _, split := range splits {
			im, err := Load(name, split, opts)
			if err != nil {
				t.Fatal(err)
			}
			n := map[string]int{"train": 60000, "test": 10000}[split]
			if im.N != n || im.H != 28 || im.W != 28 || im.C != 1 || len(im.Labels) != n {
				t.Errorf("%s %s: shape %dx%dx%dx%d, want %dx28x28x1", name, split, im.N, im.H, im.W, im.C, n)
			}
			if want := filepath.Join(mirror, name); filepath.Dir(im.Source) != want {
				t.Errorf("%s %s: Source %s is not in %s", name, split, im.Source, want)
			}
		}
	}
}
