package data

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fixtures are small idx files, written with the idx writer, that stand in
// for the real files of every registered data set. The registry is replaced
// for the test by one recording the fixtures' digests, so that the loading
// machinery can be tested without the real data.
type fixtures struct {
	// files maps "name/file" to the file's bytes.
	files map[string][]byte
	// images maps "name/split" to the images (with labels) written.
	images map[string]*Images
}

// useFixtures builds fixtures for every registered data set, swaps in a
// registry describing them, and isolates the test from the user's cache,
// mirror and Debian directory.
func useFixtures(t *testing.T) *fixtures {
	t.Helper()
	fx := &fixtures{files: map[string][]byte{}, images: map[string]*Images{}}
	reg := map[string]dataset{}
	seed := byte(1)
	for _, name := range Names() {
		ds := registry[name]
		if !isIDX(ds) {
			continue
		}
		test := dataset{url: "http://fixture.invalid/" + name + "/", debian: ds.debian, splits: map[string]splitFiles{}}
		for split, sf := range ds.splits {
			im := testImages(4+int(seed), 5, 3, seed)
			seed++
			fx.images[name+"/"+split] = im
			var imgBuf, lblBuf bytes.Buffer
			if err := WriteIDXImages(&imgBuf, im); err != nil {
				t.Fatal(err)
			}
			if err := WriteIDXLabels(&lblBuf, im.Labels); err != nil {
				t.Fatal(err)
			}
			test.splits[split] = splitFiles{
				images: fx.add(t, name, sf.images.name, imgBuf.Bytes()),
				labels: fx.add(t, name, sf.labels.name, lblBuf.Bytes()),
			}
		}
		reg[name] = test
	}
	saved := registry
	registry = reg
	forgetVerified()
	t.Cleanup(func() {
		registry = saved
		forgetVerified()
	})
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "xdg"))
	t.Setenv("FLOWOOD_MIRROR", "")
	return fx
}

// add records a fixture file, gzip-compressed from its idx data, and
// returns its spec.
func (fx *fixtures) add(t *testing.T, name, file string, idx []byte) fileSpec {
	gz := gzipBytes(t, idx)
	fx.files[name+"/"+file] = gz
	return fileSpec{name: file, sha256: sha256Hex(gz), contentSHA256: sha256Hex(idx)}
}

// sha256Hex returns the hex sha256 digest of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// put writes the fixture files of data set name into dir.
func (fx *fixtures) put(t *testing.T, name, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for key, b := range fx.files {
		if n, file, _ := strings.Cut(key, "/"); n == name {
			if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// server is an httptest server that serves fixture files as
// /name/file and counts the requests.
type server struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	// override replaces the bytes served for a "name/file" key.
	override map[string][]byte
}

// serve starts a server for fx's files.
func (fx *fixtures) serve(t *testing.T) *server {
	s := &server{override: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		key := strings.TrimPrefix(r.URL.Path, "/")
		s.mu.Lock()
		b, ok := s.override[key]
		s.mu.Unlock()
		if !ok {
			b, ok = fx.files[key]
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

// set makes s serve b for key.
func (s *server) set(key string, b []byte) {
	s.mu.Lock()
	s.override[key] = b
	s.mu.Unlock()
}

// checkImages compares loaded images with the fixture they came from.
func checkImages(t *testing.T, got, want *Images, name, split string) {
	t.Helper()
	if got.Name != name || got.Split != split {
		t.Errorf("loaded %s/%s, want %s/%s", got.Name, got.Split, name, split)
	}
	if got.N != want.N || got.H != want.H || got.W != want.W || got.C != 1 {
		t.Errorf("shape %dx%dx%dx%d, want %dx%dx%dx1", got.N, got.H, got.W, got.C, want.N, want.H, want.W)
	}
	if !bytes.Equal(got.Pix, want.Pix) || !bytes.Equal(got.Labels, want.Labels) {
		t.Error("loaded pixels or labels differ from the fixture")
	}
}

func TestLoadSourceOrder(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serve(t)
	xdg := t.TempDir()
	mirror := t.TempDir()
	debian := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", xdg)
	t.Setenv("FLOWOOD_MIRROR", mirror)
	opts := Options{DebianDir: debian, BaseURL: srv.URL}

	const name, split = "fashionmnist", "test"
	cacheDir := filepath.Join(xdg, "flowood", name)
	mirrorDir := filepath.Join(mirror, name)
	fx.put(t, name, cacheDir)
	fx.put(t, name, mirrorDir)
	fx.put(t, name, debian)

	steps := []struct {
		what    string
		wantDir string
		remove  string // directory emptied after the step
	}{
		{"cache", cacheDir, cacheDir},
		{"mirror", mirrorDir, mirrorDir},
		{"Debian", debian, debian},
		{"download", cacheDir, ""},
		{"cache after download", cacheDir, ""},
	}
	for _, step := range steps {
		im, err := Load(name, split, opts)
		if err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		checkImages(t, im, fx.images[name+"/"+split], name, split)
		if want := filepath.Join(step.wantDir, "t10k-images-idx3-ubyte.gz"); im.Source != want {
			t.Errorf("%s: Source = %q, want %q", step.what, im.Source, want)
		}
		if step.remove != "" {
			entries, _ := os.ReadDir(step.remove)
			for _, e := range entries {
				os.Remove(filepath.Join(step.remove, e.Name()))
			}
		}
	}
	if got := srv.hits.Load(); got != 2 {
		t.Errorf("server got %d requests, want 2 (one download of each file)", got)
	}
}

func TestLoadOptionsOverrideEnvironment(t *testing.T) {
	fx := useFixtures(t)
	envMirror := t.TempDir()
	t.Setenv("FLOWOOD_MIRROR", envMirror)
	optMirror := t.TempDir()
	optCache := t.TempDir()
	fx.put(t, "mnist", filepath.Join(envMirror, "mnist"))
	fx.put(t, "mnist", filepath.Join(optMirror, "mnist"))

	opts := Options{Mirror: optMirror, CacheDir: optCache, NoDownload: true}
	im, err := Load("mnist", "train", opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(optMirror, "mnist", "train-images-idx3-ubyte.gz"); im.Source != want {
		t.Errorf("Source = %q, want %q", im.Source, want)
	}
	fx.put(t, "mnist", filepath.Join(optCache, "mnist"))
	im, err = Load("MNIST", "train", opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(optCache, "mnist", "train-images-idx3-ubyte.gz"); im.Source != want {
		t.Errorf("Source = %q, want %q", im.Source, want)
	}
}

func TestLoadDebianOnlyForFashionMNIST(t *testing.T) {
	fx := useFixtures(t)
	debian := t.TempDir()
	fx.put(t, "mnist", debian)
	_, err := Load("mnist", "test", Options{DebianDir: debian, NoDownload: true})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	for _, want := range []string{"t10k-images-idx3-ubyte.gz is not in cache", "FLOWOOD_MIRROR not set", "downloading is disabled"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Debian package directory") {
		t.Errorf("error %q mentions Debian for mnist", err)
	}
}

func TestLoadMirrorChecksumMismatch(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serve(t)
	mirror := t.TempDir()
	debian := t.TempDir()
	fx.put(t, "fashionmnist", filepath.Join(mirror, "fashionmnist"))
	fx.put(t, "fashionmnist", debian)
	bad := filepath.Join(mirror, "fashionmnist", "train-labels-idx1-ubyte.gz")
	if err := os.WriteFile(bad, []byte("not the labels"), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err := Load("fashionmnist", "train", Options{Mirror: mirror, DebianDir: debian, BaseURL: srv.URL})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	want := registry["fashionmnist"].splits["train"].labels.sha256
	for _, s := range []string{bad, "want " + want, "sha256 " + sha256Hex([]byte("not the labels"))} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	if srv.hits.Load() != 0 {
		t.Error("a bad mirror file fell through to a download")
	}
}

func TestLoadCacheChecksumMismatch(t *testing.T) {
	fx := useFixtures(t)
	cache := t.TempDir()
	mirror := t.TempDir()
	fx.put(t, "notmnist", filepath.Join(cache, "notmnist"))
	fx.put(t, "notmnist", filepath.Join(mirror, "notmnist"))
	bad := filepath.Join(cache, "notmnist", "t10k-images-idx3-ubyte.gz")
	os.WriteFile(bad, []byte{0x1f, 0x8b, 0, 0}, 0o644)

	_, err := Load("notmnist", "test", Options{CacheDir: cache, Mirror: mirror})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), bad) ||
		!strings.Contains(err.Error(), "delete the cached file") {
		t.Fatalf("err = %v, want a checksum error naming %s", err, bad)
	}
}

func TestLoadReverifiesChangedFile(t *testing.T) {
	fx := useFixtures(t)
	mirror := t.TempDir()
	fx.put(t, "mnist", filepath.Join(mirror, "mnist"))
	opts := Options{Mirror: mirror, NoDownload: true}
	if _, err := Load("mnist", "test", opts); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(mirror, "mnist", "t10k-images-idx3-ubyte.gz")
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 1 // same size, different bytes
	os.WriteFile(p, b, 0o644)
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later)
	if _, err := Load("mnist", "test", opts); !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v after the file changed, want ErrChecksum", err)
	}
}

func TestLoadAcceptsRecompressedFile(t *testing.T) {
	// Debian's Fashion-MNIST files differ from the canonical downloads only
	// in their gzip headers; either must be accepted.
	fx := useFixtures(t)
	mirror := t.TempDir()
	fx.put(t, "fashionmnist", filepath.Join(mirror, "fashionmnist"))
	p := filepath.Join(mirror, "fashionmnist", "t10k-images-idx3-ubyte.gz")
	var idx bytes.Buffer
	WriteIDXImages(&idx, fx.images["fashionmnist/test"])
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Name = "t10k-images-idx3-ubyte"
	zw.Write(idx.Bytes())
	zw.Close()
	os.WriteFile(p, buf.Bytes(), 0o644)

	im, err := Load("fashionmnist", "test", Options{Mirror: mirror, NoDownload: true})
	if err != nil {
		t.Fatal(err)
	}
	checkImages(t, im, fx.images["fashionmnist/test"], "fashionmnist", "test")

	// The same holds for an uncompressed copy, which the reader also takes.
	os.WriteFile(p, idx.Bytes(), 0o644)
	if _, err := Load("fashionmnist", "test", Options{Mirror: mirror, NoDownload: true}); err != nil {
		t.Fatal(err)
	}
}

// rangeServer serves fx's files with http.ServeContent, which honours
// range requests, except that while cut > 0 it breaks off each response
// after cut bytes; it records the Range header of every request.
type rangeServer struct {
	*httptest.Server
	mu      sync.Mutex
	ranges  []string
	cut     int
	noRange bool // ignore Range headers, always send the whole file
	sent    atomic.Int64
}

func (fx *fixtures) serveRanges(t *testing.T) *rangeServer {
	s := &rangeServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := fx.files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		s.mu.Lock()
		s.ranges = append(s.ranges, r.Header.Get("Range"))
		cut, noRange := s.cut, s.noRange
		s.mu.Unlock()
		if noRange {
			r.Header.Del("Range")
		}
		if cut > 0 {
			// Promise the whole answer, send cut bytes of it, hang up.
			start := 0
			if rg := r.Header.Get("Range"); rg != "" {
				fmt.Sscanf(rg, "bytes=%d-", &start)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
				w.Header().Set("Content-Length", strconv.Itoa(len(b)-start))
				w.WriteHeader(http.StatusPartialContent)
			} else {
				w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			}
			n := min(cut, len(b)-start)
			w.Write(b[start : start+n])
			s.sent.Add(int64(n))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		cw := &countingWriter{ResponseWriter: w, n: &s.sent}
		http.ServeContent(cw, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(s.Close)
	return s
}

// countingWriter counts the body bytes written through it.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.n.Add(int64(len(b)))
	return w.ResponseWriter.Write(b)
}

func TestLoadUnknown(t *testing.T) {
	_, err := Load("cifar100", "test", Options{NoDownload: true})
	if !errors.Is(err, ErrUnknownDataset) {
		t.Fatalf("err = %v, want ErrUnknownDataset", err)
	}
	if !strings.Contains(err.Error(), "celeba, cifar10, embeddings, fashionmnist, hepmass, imagenet64, miniboone, mnist, notmnist, svhn, tinyimagenet") {
		t.Errorf("error %q does not list the known names", err)
	}
	_, err = Load("notmnist", "train", Options{NoDownload: true})
	if !errors.Is(err, ErrUnknownSplit) || !strings.Contains(err.Error(), `notmnist has no "train" split (it has: test)`) {
		t.Errorf("err = %v, want ErrUnknownSplit for notmnist train", err)
	}
	if _, err := Load("mnist", "validation", Options{Embedded: true}); !errors.Is(err, ErrUnknownSplit) {
		t.Errorf("err = %v, want ErrUnknownSplit", err)
	}
}

func TestNamesAndSplits(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names() = %v is not sorted", names)
	}
	for _, want := range []string{"celeba", "cifar10", "fashionmnist", "mnist", "notmnist", "tinyimagenet"} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() = %v lacks %s", names, want)
		}
	}
	splits, err := Splits("notmnist")
	if err != nil || strings.Join(splits, ",") != "test" {
		t.Errorf("Splits(notmnist) = %v, %v", splits, err)
	}
	splits, err = Splits("mnist")
	if err != nil || strings.Join(splits, ",") != "test,train" {
		t.Errorf("Splits(mnist) = %v, %v", splits, err)
	}
}

func TestCacheDirFromEnvironment(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := (Options{}).cacheDir(); got != "/xdg/flowood" {
		t.Errorf("cacheDir = %q, want /xdg/flowood", got)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if got := (Options{}).cacheDir(); got != "/home/someone/.cache/flowood" {
		t.Errorf("cacheDir = %q, want /home/someone/.cache/flowood", got)
	}
	if got := (Options{CacheDir: "/c"}).cacheDir(); got != "/c" {
		t.Errorf("cacheDir = %q, want /c", got)
	}
}

// isIDX reports whether ds is published as idx files.
func isIDX(ds dataset) bool {
	for _, sp := range ds.splits {
		if len(sp.forms) > 0 {
			return false
		}
	}
	return true
}

// TestLoadMemo checks that a repeated Load of unchanged files returns the
// kept images (same pixel array, its own Images value) and that a file
// touched since is read again.
func TestLoadMemo(t *testing.T) {
	fx := useFixtures(t)
	mirror := t.TempDir()
	fx.put(t, "mnist", filepath.Join(mirror, "mnist"))
	opts := Options{Mirror: mirror, NoDownload: true}
	a, err := Load("mnist", "test", opts)
	if err != nil {
		t.Fatal(err)
	}
	a.Source = "changed by the caller"
	b, err := Load("mnist", "test", opts)
	if err != nil {
		t.Fatal(err)
	}
	if a == b || &a.Pix[0] != &b.Pix[0] {
		t.Errorf("second Load: Images %p vs %p, pixels %p vs %p; want a new Images sharing the kept pixels", a, b, &a.Pix[0], &b.Pix[0])
	}
	if b.Source == a.Source {
		t.Errorf("a caller's change to its Images reached the next Load's")
	}
	c, err := Load("mnist", "test", Options{Mirror: mirror, NoDownload: true, Size: 14})
	if err != nil {
		t.Fatal(err)
	}
	if c.H != 14 {
		t.Errorf("Load with Size 14 after one without gave %dx%d images", c.H, c.W)
	}
	p := filepath.Join(mirror, "mnist", "t10k-images-idx3-ubyte.gz")
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later)
	d, err := Load("mnist", "test", opts)
	if err != nil {
		t.Fatal(err)
	}
	if &d.Pix[0] == &a.Pix[0] {
		t.Errorf("Load after the file was touched returned the kept pixels")
	}
	checkImages(t, d, a, "mnist", "test")
}
