package data

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowood/flowood/internal/atomicfile"
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
	if f.sha256 == "" {
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

// download fetches file f of data set name from base into dir and returns its path.
// The file is written under a temporary name, verified, synced and only then
// renamed into place, so dir never holds a partial or corrupt copy.
func (o Options) download(name, base string, f fileSpec, dir string) (string, error) {
	if o.BaseURL != "" {
		base = strings.TrimSuffix(o.BaseURL, "/") + "/" + name + "/"
	}
	url := base + f.name
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("downloading %s: creating cache directory: %w", url, err)
	}
	dst := filepath.Join(dir, f.name)

	resp, err := httpClient.Get(url)
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("downloading %s: HTTP status %s", url, resp.Status)
	}

	var body io.Reader = resp.Body
	var pr *progressReader
	if o.Progress != nil {
		pr = &progressReader{r: resp.Body, w: o.Progress, url: url, total: resp.ContentLength}
		pr.start()
		body = pr
	}
	err = atomicfile.Write(dst, func(tmp *os.File) error {
		bw := bufio.NewWriterSize(tmp, 1<<20)
		if _, err := io.Copy(bw, body); err != nil {
			return fmt.Errorf("receiving data: %w", err)
		}
		if err := bw.Flush(); err != nil {
			return fmt.Errorf("writing temporary file: %w", err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewinding temporary file: %w", err)
		}
		return f.check(url, tmp)
	})
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	if pr != nil {
		pr.finish(dst)
	}
	// The file was verified before the rename; record it so that it is not
	// hashed again.
	markVerified(dst, f)
	return dst, nil
}

// progressReader reports the progress of a download to w as it is read.
type progressReader struct {
	r     io.Reader
	w     io.Writer
	url   string
	total int64 // -1 when the size is unknown
	done  int64
	next  int64 // byte count at which to report next
}

// progressUnknownStep is the reporting interval for downloads of unknown size.
const progressUnknownStep = 8 << 20

// start reports the start of the download.
func (p *progressReader) start() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "downloading %s (%s)\n", p.url, formatBytes(p.total))
		p.next = p.total / 10
	} else {
		fmt.Fprintf(p.w, "downloading %s\n", p.url)
		p.next = progressUnknownStep
	}
}

// Read reads from the underlying reader and reports each tenth of the
// download (or every progressUnknownStep bytes when the size is unknown).
func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	for p.next > 0 && p.done >= p.next && (p.total <= 0 || p.done < p.total) {
		if p.total > 0 {
			fmt.Fprintf(p.w, "  %3d%% %s of %s\n", 100*p.done/p.total, formatBytes(p.done), formatBytes(p.total))
			p.next += p.total / 10
		} else {
			fmt.Fprintf(p.w, "  %s\n", formatBytes(p.done))
			p.next += progressUnknownStep
		}
	}
	return n, err
}

// finish reports the end of a successful download.
func (p *progressReader) finish(dst string) {
	fmt.Fprintf(p.w, "downloaded %s to %s\n", formatBytes(p.done), dst)
}

// formatBytes renders a byte count in decimal megabytes, or in bytes when
// small.
func formatBytes(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
