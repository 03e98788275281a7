package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Where a split is found, as SplitStatus.Where reports it besides the
// places PlaceCache, PlaceMirror and PlaceDebian.
const (
	WhereDownload     = "download"
	WhereNotAvailable = "not available"
)

// SplitStatus describes where one split of a registered data set is.
type SplitStatus struct {
	Name, Split string
	// Tabular is set for data sets read with LoadTabular.
	Tabular bool
	// Where is the place of the files: PlaceCache, PlaceMirror or
	// PlaceDebian (joined with "+" when the files are in several),
	// WhereDownload when they are not local but can be downloaded, or
	// WhereNotAvailable.
	Where string
	// Form describes the published form found, such as "JPEG zip".
	Form string
	// Paths lists the local files, when found.
	Paths []string
	// Shape is N x H x W x C for images and N x D for tables, when the
	// files were found locally and read.
	Shape []int
	// Err is the error met while locating or reading local files.
	Err error
}

// Status reports where split split of data set name is, without
// downloading anything. With read set, the files found locally are also
// read to fill in Shape (this decodes every image).
func Status(name, split string, opts Options, read bool) SplitStatus {
	st := SplitStatus{Name: strings.ToLower(name), Split: split, Where: WhereNotAvailable}
	ds, sp, err := lookup(name, split)
	if err != nil {
		st.Err = err
		return st
	}
	st.Tabular = ds.tabular
	forms := formsOf(ds, sp)
	for _, fm := range forms {
		paths, places, _, err := opts.locateAllLocalAt(st.Name, ds, fm)
		if err != nil {
			st.Err = err
			return st
		}
		if paths == nil {
			continue
		}
		st.Where, st.Form, st.Paths = placesOf(places), fm.what, paths
		if !read {
			return st
		}
		if ds.tabular {
			t, err := readTabForm(st.Name, split, fm, paths, opts)
			if err != nil {
				st.Err = err
				return st
			}
			st.Shape = []int{t.N, t.D}
		} else {
			im, err := readForm(st.Name, split, fm, paths, opts)
			if err != nil {
				st.Err = err
				return st
			}
			st.Shape = []int{im.N, im.H, im.W, im.C}
		}
		return st
	}
	if opts.NoDownload {
		return st
	}
	for _, fm := range forms {
		if (fm.url != "" || opts.BaseURL != "") && pinned(fm) {
			st.Where, st.Form = WhereDownload, fm.what
			return st
		}
	}
	return st
}

// pinned reports whether every file of fm has a recorded digest.
func pinned(fm form) bool {
	for _, f := range fm.files {
		if !f.pinned() {
			return false
		}
	}
	return true
}

// Note returns how a data set without registered files is read (for
// embeddings), or "".
func Note(name string) string {
	ds, err := lookupDataset(name)
	if err != nil {
		return ""
	}
	return ds.note
}

// IsTabular reports whether data set name is read with LoadTabular.
func IsTabular(name string) bool {
	ds, err := lookupDataset(name)
	return err == nil && ds.tabular
}

// Fetch makes every split of data set name available locally: files found
// in the cache, the mirror or Debian's directory are verified, the others
// downloaded into the cache and verified. It returns the status of each
// split (Where is the place of the files, or "download" when any was
// downloaded) and stops at the first error.
func Fetch(name string, opts Options) ([]SplitStatus, error) {
	ds, err := lookupDataset(name)
	if err != nil {
		return nil, err
	}
	name = strings.ToLower(name)
	if ds.note != "" {
		return nil, fmt.Errorf("fetching %s: it has no registered files (%s)", name, ds.note)
	}
	var out []SplitStatus
	for _, split := range sortedSplits(ds) {
		fm, paths, where, err := resolveForm(name, split, ds, ds.splits[split], opts)
		if err != nil {
			return out, err
		}
		out = append(out, SplitStatus{Name: name, Split: split, Tabular: ds.tabular, Where: where, Form: fm.what, Paths: paths})
	}
	return out, nil
}

// FileCheck is the result of checking one local data file.
type FileCheck struct {
	Name, Split string
	// Place is PlaceCache, PlaceMirror or PlaceDebian.
	Place string
	Path  string
	// SHA256 is the file's digest; Want the recorded one, empty when none
	// is recorded (the file is then accepted as is).
	SHA256, Want string
	// WantMD5 is the recorded md5, for a file with no recorded sha256.
	WantMD5 string
	// Err is nil when the file passed its check.
	Err error
}

// VerifyLocal hashes again every registered data file present in the
// cache, the mirror or Debian's directory (ignoring the record of files
// already verified in this process) and reports each, in the order of
// Names, splits and forms.
func VerifyLocal(opts Options) []FileCheck {
	var out []FileCheck
	seen := map[string]bool{}
	for _, name := range Names() {
		ds := registry[name]
		for _, split := range sortedSplits(ds) {
			for _, fm := range formsOf(ds, ds.splits[split]) {
				for _, f := range fm.files {
					for _, c := range opts.candidates(name, ds.debian, f) {
						if seen[c.Path] {
							continue
						}
						fi, err := os.Stat(c.Path)
						if errors.Is(err, fs.ErrNotExist) {
							continue
						}
						seen[c.Path] = true
						c.Name, c.Split, c.Want, c.WantMD5 = name, split, f.sha256, f.md5
						if err == nil && fi.IsDir() {
							err = fmt.Errorf("%s is a directory", c.Path)
						}
						if err == nil {
							c.SHA256, err = hashFile(c.Path)
						}
						if err == nil {
							err = checkDigest(c.Path, f, c.SHA256)
						}
						c.Err = err
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

// candidates returns the local paths where file f of data set name may be.
func (o Options) candidates(name string, debian bool, f fileSpec) []FileCheck {
	var out []FileCheck
	if c := o.cacheDir(); c != "" {
		out = append(out, FileCheck{Place: PlaceCache, Path: filepath.Join(c, name, f.name)})
	}
	if m := o.mirror(); m != "" {
		out = append(out, FileCheck{Place: PlaceMirror, Path: filepath.Join(m, name, f.name)})
	}
	if debian {
		out = append(out, FileCheck{Place: PlaceDebian, Path: filepath.Join(o.debianDir(), f.name)})
	}
	return out
}

// hashFile returns the hex sha256 digest of the file at path.
func hashFile(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	d, err := digest(fh)
	if err != nil {
		return "", fmt.Errorf("computing sha256 of %s: %w", path, err)
	}
	return d, nil
}

// checkDigest checks a file whose digest is got against f, accepting a
// matching content digest as fileSpec.check does.
func checkDigest(path string, f fileSpec, got string) error {
	if f.sha256 == "" && f.md5 != "" {
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		return f.check(path, fh)
	}
	if f.sha256 == "" || got == f.sha256 {
		return nil
	}
	if f.contentSHA256 != "" {
		fh, err := os.Open(path)
		if err != nil {
			return err
		}
		defer fh.Close()
		if content, err := contentDigest(fh); err == nil && content == f.contentSHA256 {
			return nil
		}
	}
	return fmt.Errorf("%w for %s: sha256 %s, want %s", ErrChecksum, path, got, f.sha256)
}
