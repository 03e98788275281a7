package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowood/flowood/internal/atomicfile"
	"github.com/flowood/flowood/internal/progress"
)

// ErrNotFound is returned, wrapped with the places searched, when a data file
// is in none of the local places and downloading is disabled.
var ErrNotFound = errors.New("data file not found")

// httpClient fetches downloads. Its transport gives up on servers that do not
// answer, but a download itself may take as long as it needs.
var httpClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}()

// locate returns the path of a verified copy of file f of data set name,
// trying the cache, the mirror, Debian's directory (if debian is set) and a
// download from url (or Options.BaseURL), in that order.
func (o Options) locate(name string, debian bool, url string, f fileSpec) (string, error) {
	p, searched, err := o.locateLocal(name, debian, f)
	if err != nil || p != "" {
		return p, err
	}
	if o.NoDownload {
		return "", fmt.Errorf("%w: %s is not in %s, and downloading is disabled",
			ErrNotFound, f.name, strings.Join(searched, ", "))
	}
	if !f.pinned() {
		return "", fmt.Errorf("%w: %s is not in %s; its sha256 is not recorded, so it is never downloaded: put a copy there",
			ErrNotFound, f.name, strings.Join(searched, ", "))
	}
	if url == "" && o.BaseURL == "" {
		return "", fmt.Errorf("%w: %s is not in %s, and it has no download location",
			ErrNotFound, f.name, strings.Join(searched, ", "))
	}
	cache := o.cacheDir()
	if cache == "" {
		return "", fmt.Errorf("%w: %s is not in %s, and there is no cache directory to download it to (set XDG_CACHE_HOME or Options.CacheDir)",
			ErrNotFound, f.name, strings.Join(searched, ", "))
	}
	return o.download(name, url, f, filepath.Join(cache, name))
}

// locateLocal returns the path of a verified copy of file f of data set
// name in the cache, the mirror or Debian's directory (if debian is set),
// or "" and the places searched when none has it. A copy that fails
// verification is an error.
func (o Options) locateLocal(name string, debian bool, f fileSpec) (string, []string, error) {
	p, _, searched, err := o.locateLocalAt(name, debian, f)
	return p, searched, err
}

// Places where locateLocalAt finds files.
const (
	PlaceCache  = "cache"
	PlaceMirror = "mirror"
	PlaceDebian = "debian"
)

// locateLocalAt is locateLocal, also returning the place the file was
// found: PlaceCache, PlaceMirror or PlaceDebian.
func (o Options) locateLocalAt(name string, debian bool, f fileSpec) (string, string, []string, error) {
	var searched []string
	if cache := o.cacheDir(); cache != "" {
		p := filepath.Join(cache, name, f.name)
		ok, err := haveVerified(p, f)
		if err != nil {
			if errors.Is(err, ErrChecksum) {
				err = fmt.Errorf("%w (delete the cached file to download it again)", err)
			}
			return "", "", nil, err
		}
		if ok {
			return p, PlaceCache, nil, nil
		}
		searched = append(searched, "cache "+filepath.Dir(p))
	}
	if m := o.mirror(); m != "" {
		p := filepath.Join(m, name, f.name)
		ok, err := haveVerified(p, f)
		if err != nil {
			return "", "", nil, err
		}
		if ok {
			return p, PlaceMirror, nil, nil
		}
		searched = append(searched, "mirror "+filepath.Dir(p))
	} else {
		searched = append(searched, "mirror (FLOWOOD_MIRROR not set)")
	}
	if debian {
		p := filepath.Join(o.debianDir(), f.name)
		ok, err := haveVerified(p, f)
		if err != nil {
			return "", "", nil, err
		}
		if ok {
			return p, PlaceDebian, nil, nil
		}
		searched = append(searched, "Debian package directory "+o.debianDir())
	}
	return "", "", searched, nil
}

// locateAllLocal returns the paths of verified local copies of all files
// of form fm, or nil and a description of what is missing when some file
// is in no local place.
func (o Options) locateAllLocal(name string, ds dataset, fm form) ([]string, string, error) {
	paths, _, where, err := o.locateAllLocalAt(name, ds, fm)
	return paths, where, err
}

// locateAllLocalAt is locateAllLocal, also returning the place of each file.
func (o Options) locateAllLocalAt(name string, ds dataset, fm form) ([]string, []string, string, error) {
	paths := make([]string, len(fm.files))
	places := make([]string, len(fm.files))
	for i, f := range fm.files {
		p, place, searched, err := o.locateLocalAt(name, ds.debian, f)
		if err != nil {
			return nil, nil, "", err
		}
		if p == "" {
			return nil, nil, fmt.Sprintf("%s (%s) is not in %s", f.name, fm.what, strings.Join(searched, ", ")), nil
		}
		paths[i], places[i] = p, place
	}
	return paths, places, "", nil
}

// haveVerified reports whether path exists, and if it does, verifies it
// against f. A missing file is not an error; a file that fails verification
// or cannot be read is.
func haveVerified(path string, f fileSpec) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("looking for data file: %w", err)
	}
	if fi.IsDir() {
		return false, fmt.Errorf("looking for data file: %s is a directory", path)
	}
	if err := verifyFile(path, f); err != nil {
		return false, err
	}
	return true, nil
}

// download fetches file f of data set name from base into dir and returns
// its path. The data goes to dir/NAME.part first and is kept there if the
// transfer breaks: the next attempt, in this call (a few are made) or a
// later run, asks the server for the rest with an HTTP range request and
// appends it, or starts over when the server does not honour ranges. The
// complete file is verified against its checksum, synced and only then
// renamed into place, so dir never holds a partial or corrupt copy under
// the real name; a .part that fails verification is deleted, so that the
// next attempt starts afresh.
func (o Options) download(name, base string, f fileSpec, dir string) (string, error) {
	if o.BaseURL != "" {
		base = strings.TrimSuffix(o.BaseURL, "/") + "/" + name + "/"
	}
	url := base + f.name
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("downloading %s: creating cache directory: %w", url, err)
	}
	dst := filepath.Join(dir, f.name)
	part := dst + ".part"
	// One process at a time downloads a file: the others wait, then find
	// it in place.
	unlock, err := lockFile(dst + ".lock")
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	defer unlock()
	if fh, err := os.Open(dst); err == nil {
		ok, _ := haveVerified(dst, f)
		if !ok {
			ok = f.check(dst, fh) == nil
			if ok {
				markVerified(dst, f)
			}
		}
		fh.Close()
		if ok {
			return dst, nil
		}
	}
	for attempt := 1; attempt <= downloadAttempts; attempt++ {
		var progressed bool
		progressed, err = o.fetchPart(name, url, part)
		if err == nil {
			break
		}
		var re *retryableError
		if !errors.As(err, &re) {
			if fi, serr := os.Stat(part); serr == nil && fi.Size() == 0 {
				os.Remove(part) // nothing received: leave no empty .part
			}
			return "", fmt.Errorf("downloading %s: %w", url, err)
		}
		if o.Progress != nil && attempt < downloadAttempts {
			fmt.Fprintf(o.Progress, "download of %s interrupted (%v); resuming\n", url, re.err)
		}
		if !progressed {
			time.Sleep(time.Duration(attempt) * retryPause)
		}
	}
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w (the part received is kept in %s; run again to resume)", url, err, part)
	}
	pf, err := os.Open(part)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	err = f.check(url, pf)
	pf.Close()
	if err != nil {
		os.Remove(part)
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	if err := os.Rename(part, dst); err != nil {
		return "", fmt.Errorf("downloading %s: renaming %s into place: %w", url, part, err)
	}
	atomicfile.SyncDir(dir)
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "downloaded %s to %s\n", url, dst)
	}
	// The file was verified before the rename; record it so that it is not
	// hashed again.
	markVerified(dst, f)
	return dst, nil
}

// downloadAttempts is the number of transfers download makes before it
// gives up (keeping the part received); retryPause is the pause before a
// retry that follows an attempt which received nothing.
var (
	downloadAttempts = 5
	retryPause       = time.Second
)

// retryableError is a transfer failure worth retrying: a broken or short
// connection, or a range the server answered oddly.
type retryableError struct{ err error }

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// fetchPart makes one transfer of url into part, continuing the data part
// already holds when the server honours range requests. It reports whether
// it received any data; the error is a *retryableError when another
// attempt may succeed.
func (o Options) fetchPart(name, url, part string) (bool, error) {
	fh, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, fmt.Errorf("opening %s: %w", part, err)
	}
	defer fh.Close()
	have, err := fh.Seek(0, io.SeekEnd)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", part, err)
	}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return false, &retryableError{err}
	}
	defer resp.Body.Close()
	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		start, end, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && resp.ContentLength >= 0 && resp.ContentLength != end-start+1 {
			ok = false
		}
		if !ok || start != have {
			// Not the range asked for: start over.
			if err := truncate(fh); err != nil {
				return false, err
			}
			return false, &retryableError{fmt.Errorf("server answered a request for bytes %d- with range %q", have, resp.Header.Get("Content-Range"))}
		}
		total = size
	case resp.StatusCode == http.StatusOK:
		if have > 0 {
			// The server ignores ranges and sends the whole file.
			if err := truncate(fh); err != nil {
				return false, err
			}
			have = 0
		}
		total = resp.ContentLength
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && have > 0:
		// Nothing lies past the part's end: it holds the whole file (the
		// checksum decides), unless the server says the file is shorter.
		if size, ok := parseUnsatisfiedRange(resp.Header.Get("Content-Range")); ok && size != have {
			if err := truncate(fh); err != nil {
				return false, err
			}
			return false, &retryableError{fmt.Errorf("%s holds %d bytes, but the file has %d; starting over", part, have, size)}
		}
		return false, nil
	case resp.StatusCode >= 500:
		return false, &retryableError{fmt.Errorf("HTTP status %s", resp.Status)}
	default:
		return false, fmt.Errorf("HTTP status %s", resp.Status)
	}
	var bar *progress.Bar
	if o.Progress != nil && total > 0 {
		bar = progress.New(o.Progress, "downloading "+name+"/"+path.Base(url), int(total/1000), "kB")
		bar.Start = int(have / 1000)
		if have > 0 {
			fmt.Fprintf(o.Progress, "resuming %s at %s of %s\n", url, formatBytes(have), formatBytes(total))
		} else {
			fmt.Fprintf(o.Progress, "downloading %s (%s)\n", url, formatBytes(total))
		}
	} else if o.Progress != nil {
		fmt.Fprintf(o.Progress, "downloading %s\n", url)
	}
	bw := bufio.NewWriterSize(fh, 1<<20)
	got := int64(0)
	buf := make([]byte, 256<<10)
	var rerr error
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := bw.Write(buf[:n]); werr != nil {
				return got > 0, fmt.Errorf("writing %s: %w", part, werr)
			}
			got += int64(n)
			if bar != nil {
				bar.Update(int((have+got)/1000), int(got/1000), "")
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	if err := bw.Flush(); err != nil {
		return got > 0, fmt.Errorf("writing %s: %w", part, err)
	}
	if err := fh.Sync(); err != nil {
		return got > 0, fmt.Errorf("syncing %s: %w", part, err)
	}
	if rerr != nil {
		return got > 0, &retryableError{fmt.Errorf("receiving data: %w", rerr)}
	}
	if total >= 0 && have+got != total {
		return got > 0, &retryableError{fmt.Errorf("received %s of %s", formatBytes(have+got), formatBytes(total))}
	}
	if bar != nil {
		bar.Update(int(total/1000), int(got/1000), "")
	}
	return got > 0, nil
}

// truncate empties the partial file f.
func truncate(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("truncating %s: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding %s: %w", f.Name(), err)
	}
	return nil
}

// parseContentRange parses a Content-Range header "bytes START-END/SIZE",
// returning START, END and SIZE (-1 when given as *); it requires
// START <= END < SIZE.
func parseContentRange(h string) (start, end, size int64, ok bool) {
	rest, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, 0, 0, false
	}
	span, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, 0, false
	}
	a, b, found := strings.Cut(span, "-")
	if !found {
		return 0, 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, 0, false
	}
	end, err = strconv.ParseInt(b, 10, 64)
	if err != nil || end < start {
		return 0, 0, 0, false
	}
	if sz == "*" {
		return start, end, -1, true
	}
	size, err = strconv.ParseInt(sz, 10, 64)
	if err != nil || size <= end {
		return 0, 0, 0, false
	}
	return start, end, size, true
}

// parseUnsatisfiedRange parses the Content-Range "bytes */SIZE" of a 416
// answer, returning SIZE.
func parseUnsatisfiedRange(h string) (int64, bool) {
	sz, found := strings.CutPrefix(h, "bytes */")
	if !found {
		return 0, false
	}
	size, err := strconv.ParseInt(sz, 10, 64)
	return size, err == nil && size >= 0
}

// formatBytes renders a byte count in decimal megabytes, or in bytes when
// small.
func formatBytes(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
