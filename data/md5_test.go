package data

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// withMD5Set registers a data set "md5set" whose one file, a.bin, is
// pinned by the md5 of want only, read by a loader that returns one 1x1
// image per byte; it returns the file's path in a mirror once written.
func withMD5Set(t *testing.T, want []byte, url string) {
	sum := md5.Sum(want)
	saved := registry
	registry = map[string]dataset{}
	for k, v := range saved {
		registry[k] = v
	}
	registry["md5set"] = dataset{splits: map[string]splitFiles{"test": {forms: []form{{
		what: "bytes", url: url,
		files: []fileSpec{{name: "a.bin", md5: hex.EncodeToString(sum[:])}},
		load: func(name, split string, paths []string, _ Options) (*Images, error) {
			return &Images{N: 1, H: 1, W: 1, C: 1, Pix: []uint8{1}}, nil
		},
	}}}}}
	t.Cleanup(func() { registry = saved; forgetVerified() })
}

// TestMD5Pinned checks a file whose only recorded digest is an md5: it is
// downloaded and verified, a download or a local copy with other content
// is a checksum error naming the file and both digests, and data verify
// reports it.
func TestMD5Pinned(t *testing.T) {
	isolate(t)
	content := []byte("the published bytes")
	served := content
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(served) }))
	defer srv.Close()
	withMD5Set(t, content, srv.URL+"/")
	fastRetries(t, 1)

	cache := t.TempDir()
	if st := Status("md5set", "test", Options{CacheDir: cache}, false); st.Where != WhereDownload {
		t.Errorf("Status = %+v, want a download", st)
	}
	if _, err := Load("md5set", "test", Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	served = []byte("other bytes")
	sum := md5.Sum(served)
	_, err := Load("md5set", "test", Options{CacheDir: t.TempDir()})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "md5 "+hex.EncodeToString(sum[:])) || !strings.Contains(err.Error(), "a.bin") {
		t.Errorf("wrong download: %v", err)
	}

	mirror := t.TempDir()
	bad := filepath.Join(mirror, "md5set", "a.bin")
	writeFile(t, bad, []byte("tampered"))
	_, err = Load("md5set", "test", Options{Mirror: mirror, CacheDir: t.TempDir(), NoDownload: true})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), bad) {
		t.Errorf("wrong mirror copy: %v", err)
	}
	var found bool
	for _, c := range VerifyLocal(Options{Mirror: mirror, CacheDir: cache}) {
		if c.Name != "md5set" {
			continue
		}
		found = true
		if c.WantMD5 == "" || c.Want != "" {
			t.Errorf("check %+v: want the md5 only", c)
		}
		if (c.Path == bad) != (c.Err != nil) {
			t.Errorf("check of %s: %v", c.Path, c.Err)
		}
	}
	if !found {
		t.Error("VerifyLocal did not check md5set's files")
	}
}

// TestTinyImageNetCanonical reads the train and val folders of a zip in
// the layout of tiny-imagenet-200.zip through its registered forms.
func TestTinyImageNetCanonical(t *testing.T) {
	img := func(v uint8) []byte { return jpegBytes(t, 64, 64, v) }
	z := zipBytes(t,
		entry{"tiny-imagenet-200/wnids.txt", []byte("n02\nn01\n")},
		entry{"tiny-imagenet-200/words.txt", []byte("n01\tone\nn02\ttwo\n")},
		entry{"tiny-imagenet-200/train/n01/n01_boxes.txt", []byte("n01_0.JPEG\t0\t0\t63\t63\n")},
		entry{"tiny-imagenet-200/train/n01/images/n01_0.JPEG", img(10)},
		entry{"tiny-imagenet-200/train/n02/images/n02_0.JPEG", img(200)},
		entry{"tiny-imagenet-200/train/n02/images/n02_1.JPEG", img(220)},
		entry{"tiny-imagenet-200/val/val_annotations.txt", []byte("val_0.JPEG\tn02\t0\t0\t63\t63\n")},
		entry{"tiny-imagenet-200/val/images/val_0.JPEG", img(90)},
		entry{"tiny-imagenet-200/test/images/test_0.JPEG", img(50)},
	)
	p := filepath.Join(t.TempDir(), "tiny-imagenet-200.zip")
	writeFile(t, p, z)
	for split, want := range map[string]string{"train": "3 [0 1 1]", "val": "1 [1]"} {
		fm := registry["tinyimagenet"].splits[split].forms[0]
		if fm.what != "canonical zip" || fm.files[0].md5 == "" {
			t.Fatalf("%s: first form %q %+v", split, fm.what, fm.files)
		}
		im, err := fm.load("tinyimagenet", split, []string{p}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(im.N, im.Labels); got != want || im.H != 64 || im.C != 3 {
			t.Errorf("%s: %s %dx%d, want %s", split, got, im.H, im.C, want)
		}
	}
	// An image outside WNID/images/ in train is an error naming it.
	z = zipBytes(t, entry{"tiny-imagenet-200/wnids.txt", []byte("n01\n")},
		entry{"tiny-imagenet-200/val/val_annotations.txt", []byte("")},
		entry{"tiny-imagenet-200/train/n01/stray.JPEG", img(1)})
	writeFile(t, p, z)
	fm := registry["tinyimagenet"].splits["train"].forms[0]
	if _, err := fm.load("tinyimagenet", "train", []string{p}, Options{}); err == nil || !strings.Contains(err.Error(), "stray.JPEG") {
		t.Errorf("stray image: %v", err)
	}
}
