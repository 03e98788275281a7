package data

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestLoadDownload(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serve(t)
	cache := t.TempDir()
	var progress bytes.Buffer
	opts := Options{CacheDir: cache, BaseURL: srv.URL + "/", Progress: &progress}
	im, err := Load("notmnist", "test", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkImages(t, im, fx.images["notmnist/test"], "notmnist", "test")
	for _, file := range []string{"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"} {
		b, err := os.ReadFile(filepath.Join(cache, "notmnist", file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, fx.files["notmnist/"+file]) {
			t.Errorf("cached %s differs from the served file", file)
		}
		fi, _ := os.Stat(filepath.Join(cache, "notmnist", file))
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("cached %s has mode %v, want 0644", file, fi.Mode().Perm())
		}
	}
	out := progress.String()
	for _, want := range []string{"downloading " + srv.URL + "/notmnist/t10k-images-idx3-ubyte.gz (", "downloaded "} {
		if !strings.Contains(out, want) {
			t.Errorf("progress output %q lacks %q", out, want)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(cache, "notmnist")); len(entries) != 2 {
		t.Errorf("cache holds %d entries, want 2", len(entries))
	}

	// Now cached: no more requests, even with downloads disabled.
	before := srv.hits.Load()
	if _, err := Load("notmnist", "test", Options{CacheDir: cache, NoDownload: true}); err != nil {
		t.Fatal(err)
	}
	if srv.hits.Load() != before {
		t.Error("loading a cached data set made requests")
	}
}

// fastRetries makes failed transfers retry at once, n attempts in all.
func fastRetries(t *testing.T, n int) {
	oldN, oldP := downloadAttempts, retryPause
	downloadAttempts, retryPause = n, 0
	t.Cleanup(func() { downloadAttempts, retryPause = oldN, oldP })
}

// TestDownloadResumes leaves the first half of a file in the cache as
// an interrupted download would: the next download asks for the rest
// only, appends it, verifies the whole and moves it into place.
func TestDownloadResumes(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serveRanges(t)
	cache := t.TempDir()
	const file = "t10k-images-idx3-ubyte.gz"
	b := fx.files["notmnist/"+file]
	half := len(b) / 2
	writeFile(t, filepath.Join(cache, "notmnist", file+".part"), b[:half])
	var out bytes.Buffer
	im, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/", Progress: &out})
	if err != nil {
		t.Fatal(err)
	}
	checkImages(t, im, fx.images["notmnist/test"], "notmnist", "test")
	got, _ := os.ReadFile(filepath.Join(cache, "notmnist", file))
	if !bytes.Equal(got, b) {
		t.Error("cached file differs from the served one")
	}
	if _, err := os.Stat(filepath.Join(cache, "notmnist", file+".part")); !os.IsNotExist(err) {
		t.Errorf("the .part file is still there: %v", err)
	}
	if want := fmt.Sprintf("bytes=%d-", half); !slices.Contains(srv.ranges, want) {
		t.Errorf("requests had ranges %q, want one for %q", srv.ranges, want)
	}
	// The images file was resumed, the labels file fetched whole.
	labels := len(fx.files["notmnist/t10k-labels-idx1-ubyte.gz"])
	if sent := srv.sent.Load(); sent != int64(len(b)-half+labels) {
		t.Errorf("server sent %d bytes, want %d", sent, len(b)-half+labels)
	}
	if !strings.Contains(out.String(), "resuming "+srv.URL+"/notmnist/"+file+" at ") {
		t.Errorf("progress output lacks the resumption:\n%s", out.String())
	}
}

// TestDownloadBrokenConnection breaks every response off after a few
// kilobytes: the download retries with ranges until it has the file.
func TestDownloadBrokenConnection(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serveRanges(t)
	const file = "t10k-images-idx3-ubyte.gz"
	b := fx.files["notmnist/"+file]
	srv.cut = len(b)/3 + 1
	fastRetries(t, 5)
	cache := t.TempDir()
	var out bytes.Buffer
	if _, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/", Progress: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got, _ := os.ReadFile(filepath.Join(cache, "notmnist", file))
	if !bytes.Equal(got, b) {
		t.Error("cached file differs from the served one")
	}
	if !strings.Contains(out.String(), "interrupted") || len(srv.ranges) < 3 {
		t.Errorf("%d requests (ranges %q), progress:\n%s", len(srv.ranges), srv.ranges, out.String())
	}

	// With too few attempts the part received is kept, and a later call
	// finishes it.
	cache = t.TempDir()
	srv.cut = len(b) / 5
	fastRetries(t, 2)
	_, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/"})
	part := filepath.Join(cache, "notmnist", file+".part")
	if err == nil || !strings.Contains(err.Error(), "run again to resume") || !strings.Contains(err.Error(), part) {
		t.Fatalf("err = %v, want a failure keeping %s", err, part)
	}
	if fi, err := os.Stat(part); err != nil || fi.Size() != int64(2*srv.cut) {
		t.Fatalf("part: %v, %v; want the %d bytes received", fi, err, 2*srv.cut)
	}
	srv.cut = 0
	if _, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/"}); err != nil {
		t.Fatal(err)
	}
}

// TestDownloadRestarts covers a server that ignores ranges, and a .part
// whose bytes are not the file's: the first is restarted from zero, the
// second fails its checksum, is deleted, and the next call succeeds.
func TestDownloadRestarts(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serveRanges(t)
	const file = "t10k-images-idx3-ubyte.gz"
	b := fx.files["notmnist/"+file]
	part := func(cache string) string { return filepath.Join(cache, "notmnist", file+".part") }

	srv.noRange = true
	cache := t.TempDir()
	writeFile(t, part(cache), []byte("stale bytes from elsewhere"))
	if _, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(cache, "notmnist", file)); !bytes.Equal(got, b) {
		t.Error("cached file differs from the served one")
	}

	srv.noRange = false
	cache = t.TempDir()
	bad := bytes.Clone(b[:len(b)/2])
	bad[10] ^= 0xff
	writeFile(t, part(cache), bad)
	_, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/"})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "want ") {
		t.Fatalf("err = %v, want a checksum error naming the file and the digests", err)
	}
	if _, err := os.Stat(part(cache)); !os.IsNotExist(err) {
		t.Errorf("the corrupt .part is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cache, "notmnist", file)); !os.IsNotExist(err) {
		t.Errorf("a corrupt file was moved into place: %v", err)
	}
	if _, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/"}); err != nil {
		t.Fatal(err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, c := range []struct {
		h                string
		start, end, size int64
		ok               bool
	}{
		{"bytes 100-199/200", 100, 199, 200, true},
		{"bytes 0-0/1", 0, 0, 1, true},
		{"bytes 5-9/*", 5, 9, -1, true},
		{"bytes 5000-9999/6000", 0, 0, 0, false}, // ends past the size
		{"bytes 200-199/200", 0, 0, 0, false},
		{"bytes 9-5/20", 0, 0, 0, false},
		{"bytes -5-9/20", 0, 0, 0, false},
		{"bits 0-1/2", 0, 0, 0, false},
		{"bytes 1-2", 0, 0, 0, false},
		{"bytes x-2/3", 0, 0, 0, false},
		{"bytes 1-y/3", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		start, end, size, ok := parseContentRange(c.h)
		if ok != c.ok || ok && (start != c.start || end != c.end || size != c.size) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", c.h, start, end, size, ok, c.start, c.end, c.size, c.ok)
		}
	}
	for h, want := range map[string]int64{"bytes */300": 300, "bytes */0": 0} {
		if got, ok := parseUnsatisfiedRange(h); !ok || got != want {
			t.Errorf("parseUnsatisfiedRange(%q) = %d, %v", h, got, ok)
		}
	}
	for _, h := range []string{"bytes */", "bytes */-1", "bytes 0-1/2", ""} {
		if _, ok := parseUnsatisfiedRange(h); ok {
			t.Errorf("parseUnsatisfiedRange(%q) accepted", h)
		}
	}
}

// TestDownloadOddServers covers servers that answer ranges badly: a
// Content-Range past the file's end (it used to crash the progress bar),
// a 416 saying the .part is longer than the file, and a 404 (which must
// leave no empty .part behind).
func TestDownloadOddServers(t *testing.T) {
	fx := useFixtures(t)
	fastRetries(t, 3)
	const file = "t10k-images-idx3-ubyte.gz"
	b := fx.files["notmnist/"+file]
	var mode atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := fx.files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		var start int
		if _, err := fmt.Sscanf(r.Header.Get("Range"), "bytes=%d-", &start); err == nil && start > 0 {
			switch mode.Load() {
			case 1: // a range ending past the size it states
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+2*len(body), len(body)+1))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(body[min(start, len(body)):])
				return
			case 2: // nothing to send past a .part longer than the file
				w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", len(body)))
				w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
				return
			}
		}
		w.Write(body)
	}))
	defer srv.Close()
	part := func(cache string) string { return filepath.Join(cache, "notmnist", file+".part") }

	mode.Store(1)
	cache := t.TempDir()
	writeFile(t, part(cache), b[:len(b)/2])
	var out bytes.Buffer
	if _, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/", Progress: &out}); err != nil {
		t.Fatalf("bad Content-Range: %v\n%s", err, out.String())
	}

	mode.Store(2)
	cache = t.TempDir()
	writeFile(t, part(cache), append(bytes.Clone(b), "trailing junk"...))
	if _, err := Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/"}); err != nil {
		t.Fatalf(".part longer than the file: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(cache, "notmnist", file)); !bytes.Equal(got, b) {
		t.Error(".part longer than the file: cached file differs")
	}

	cache = t.TempDir()
	if _, err := Load("mnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/nowhere/"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "mnist", "*.part"))
	if len(matches) != 0 {
		t.Errorf("a failed download left %v", matches)
	}
}

// TestDownloadConcurrent loads one data set from several goroutines at
// once: the file is downloaded once, the others wait for it and use it.
func TestDownloadConcurrent(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serveRanges(t)
	cache := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Load("notmnist", "test", Options{CacheDir: cache, BaseURL: srv.URL + "/"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("load %d: %v", i, err)
		}
	}
	want := len(fx.files["notmnist/t10k-images-idx3-ubyte.gz"]) + len(fx.files["notmnist/t10k-labels-idx1-ubyte.gz"])
	if got := srv.sent.Load(); got != int64(want) {
		t.Errorf("server sent %d bytes, want %d (each file once)", got, want)
	}
}

func TestLoadDownloadChecksumMismatch(t *testing.T) {
	fx := useFixtures(t)
	srv := fx.serve(t)
	cache := t.TempDir()
	good := fx.files["mnist/t10k-labels-idx1-ubyte.gz"]
	corrupt := bytes.Clone(good)
	corrupt[len(corrupt)-5] ^= 0x40
	srv.set("mnist/t10k-labels-idx1-ubyte.gz", corrupt)

	_, err := Load("mnist", "test", Options{CacheDir: cache, BaseURL: srv.URL})
	if !errors.Is(err, ErrChecksum) {
		t.Fatalf("err = %v, want ErrChecksum", err)
	}
	want := registry["mnist"].splits["test"].labels.sha256
	for _, s := range []string{srv.URL + "/mnist/t10k-labels-idx1-ubyte.gz", "want " + want, "sha256 " + sha256Hex(corrupt)} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "mnist"))
	for _, e := range entries {
		if strings.Contains(e.Name(), "labels") {
			t.Errorf("cache holds %s after a failed download", e.Name())
		}
	}
	if len(entries) != 1 {
		t.Errorf("cache holds %d entries, want only the good image file", len(entries))
	}

	// Once the server is fixed, the download succeeds.
	srv.set("mnist/t10k-labels-idx1-ubyte.gz", good)
	if _, err := Load("mnist", "test", Options{CacheDir: cache, BaseURL: srv.URL}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDownloadHTTPError(t *testing.T) {
	fx := useFixtures(t)
	fastRetries(t, 2)
	srv := fx.serve(t)
	srv.Close()
	_, err := Load("mnist", "train", Options{CacheDir: t.TempDir(), BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "downloading "+srv.URL+"/mnist/train-images-idx3-ubyte.gz") {
		t.Errorf("err = %v, want a download error naming the URL", err)
	}

	missing := httptest.NewServer(http.NotFoundHandler())
	defer missing.Close()
	_, err = Load("mnist", "train", Options{CacheDir: t.TempDir(), BaseURL: missing.URL})
	if err == nil || !strings.Contains(err.Error(), "HTTP status 404") {
		t.Errorf("err = %v, want an HTTP 404 error", err)
	}
}
