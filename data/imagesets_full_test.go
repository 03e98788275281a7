package data

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// celebAFullFixture writes an img_align_celeba.zip of five 178x218 faces
// (image i has red channel 10*i, pixel (x, y) green x and blue y) and a
// partition list with the given lines, and returns their paths.
func celebAFullFixture(t *testing.T, partition string) (zipPath, partPath string) {
	dir := t.TempDir()
	var es []entry
	for i := 1; i <= 5; i++ {
		// PNG data under .jpg names: the format comes from the content.
		es = append(es, entry{fmt.Sprintf("img_align_celeba/%06d.jpg", i), pngBytes(t, celebAFullH, celebAFullW, uint8(10*i))})
	}
	zipPath, partPath = filepath.Join(dir, "img_align_celeba.zip"), filepath.Join(dir, "list_eval_partition.txt")
	writeFile(t, zipPath, zipBytes(t, es...))
	writeFile(t, partPath, []byte(partition))
	return zipPath, partPath
}

// TestCelebAFull reads the partitions of a canonical-format CelebA: the
// images each partition lists, at full size or centre-cropped (148) and
// resized as they are decoded.
func TestCelebAFull(t *testing.T) {
	z, p := celebAFullFixture(t, "000001.jpg 0\n000002.jpg 0\n000003.jpg 1\n000004.jpg 2\n000005.jpg 0\n")
	im, err := loadCelebAFull(z, p, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || im.H != 218 || im.W != 178 || im.C != 3 {
		t.Fatalf("train: %dx%dx%dx%d, want 3x218x178x3", im.N, im.H, im.W, im.C)
	}
	// Images 1, 2 and 5, in name order; pixel (x=7, y=9) is (10i, 7, 9).
	for k, i := range []int{1, 2, 5} {
		if got := im.Image(k)[(9*178+7)*3:][:3]; got[0] != uint8(10*i) || got[1] != 7 || got[2] != 9 {
			t.Errorf("train image %d pixel (7,9) = %v, want [%d 7 9]", k, got, 10*i)
		}
	}
	for part, want := range map[int]int{1: 3, 2: 4} {
		im, err := loadCelebAFull(z, p, part, Options{})
		if err != nil || im.N != 1 || im.Image(0)[0] != uint8(10*want) {
			t.Errorf("partition %d: %v, %v", part, im, err)
		}
	}
	// Options.Size 148 crops the centre 148x148 (from x 15, y 35) and
	// keeps that size; 32 resizes it.
	im, err = loadCelebAFull(z, p, 2, Options{Size: 148})
	if err != nil || im.N != 1 || im.H != 148 || im.W != 148 {
		t.Fatalf("cropped: %v, %v", im, err)
	}
	if got := im.Image(0)[:3]; got[0] != 40 || got[1] != 15 || got[2] != 35 {
		t.Errorf("cropped pixel (0,0) = %v, want [40 15 35]", got)
	}
	if r := im.Resampling; r.StoredWidth != 178 || r.CropWidth != 148 || r.Method != "" {
		t.Errorf("cropped: resampling %+v", r)
	}
	im, err = loadCelebAFull(z, p, 0, Options{Size: 32})
	if err != nil || im.N != 3 || im.H != 32 || im.W != 32 || im.C != 3 {
		t.Fatalf("resized: %v, %v", im, err)
	}
	if r := im.Resampling; r.StoredWidth != 178 || r.StoredHeight != 218 || r.CropWidth != 148 || r.Method != "area" {
		t.Errorf("resized: resampling %+v", r)
	}
	// Options.ResizeMethod: each face resized by that method
	crop, err := loadCelebAFull(z, p, 0, Options{Size: 148})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ResizeWith(crop, 32, 32, "nearest")
	if err != nil {
		t.Fatal(err)
	}
	im, err = loadCelebAFull(z, p, 0, Options{Size: 32, ResizeMethod: "nearest"})
	if err != nil || !slices.Equal(im.Pix, want.Pix) || im.Resampling.Method != "nearest" {
		t.Errorf("nearest: %v, resampling %+v", err, im.Resampling)
	}
}

// TestCelebAFullBadInput checks that a partition list naming missing
// images or holding malformed lines is an error naming the file.
func TestCelebAFullBadInput(t *testing.T) {
	for _, c := range []struct{ partition, want string }{
		{"000001.jpg 0\n000009.jpg 0\n", "holds 1 of the 2 images"},
		{"000001.jpg 0\n000002.jpg x\n", `line 2 is "000002.jpg x"`},
		{"000001.jpg 0\n000001.jpg 0\n", "line 2 lists 000001.jpg again"},
		{"000001.jpg 1\n", "no image in partition 0"},
		{"000001.jpg 0 extra\n", "line 1"},
		{"", "no image in partition 0"},
	} {
		z, p := celebAFullFixture(t, c.partition)
		_, err := loadCelebAFull(z, p, 0, Options{})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Base(p)) && !strings.Contains(err.Error(), filepath.Base(z)) {
			t.Errorf("partition %q: err = %v, want %q naming the file", c.partition, err, c.want)
		}
	}
}

// TestImageNetTarForm reads a tar of 64x64 PNGs in the layout of
// image-net.org's valid_64x64.tar through the registered form.
func TestImageNetTarForm(t *testing.T) {
	p := filepath.Join(t.TempDir(), "valid_64x64.tar")
	writeFile(t, p, tarBytes(t,
		entry{"valid_64x64/00000002.png", pngBytes(t, 64, 64, 20)},
		entry{"valid_64x64/00000001.png", pngBytes(t, 64, 64, 10)}))
	fm := registry["imagenet64"].splits["val"].forms[0]
	if fm.what != "PNG tar" {
		t.Fatalf("first val form is %q", fm.what)
	}
	im, err := fm.load("imagenet64", "val", []string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 2 || im.H != 64 || im.W != 64 || im.Labels != nil || im.Image(0)[0] != 10 || im.Image(1)[0] != 20 {
		t.Errorf("got %dx%dx%d labels %v, first pixels %d %d", im.N, im.H, im.W, im.Labels, im.Image(0)[0], im.Image(1)[0])
	}
	// A 32x32 image in it is an error naming the entry.
	writeFile(t, p, tarBytes(t, entry{"valid_64x64/00000001.png", pngBytes(t, 32, 32, 10)}))
	if _, err := fm.load("imagenet64", "val", []string{p}, Options{}); err == nil || !strings.Contains(err.Error(), "00000001.png") {
		t.Errorf("wrong size: %v", err)
	}
}

func FuzzReadCelebAPartition(f *testing.F) {
	f.Add([]byte("000001.jpg 0\n000002.jpg 1\n000003.jpg 2\n"))
	f.Add([]byte("000001.jpg 0\r\n\n000002.jpg 0\n"))
	f.Add([]byte("000001.jpg 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "list_eval_partition.txt")
		writeFile(t, p, b)
		for part := range 3 {
			want, err := readCelebAPartition(p, part)
			if err != nil {
				if !strings.Contains(err.Error(), p) {
					t.Fatalf("error %q does not name the file", err)
				}
				continue
			}
			if len(want) == 0 || len(want) > len(b)/4 {
				t.Fatalf("%d names from %d bytes", len(want), len(b))
			}
		}
	})
}
