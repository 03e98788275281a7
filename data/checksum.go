package data

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// ErrChecksum is returned, wrapped with the file name and the expected and
// actual digests, when a data file's sha256 digest is not the recorded one.
var ErrChecksum = errors.New("checksum mismatch")

// fileSpec describes one published data file and how to verify it.
type fileSpec struct {
	// name is the canonical file name, such as "train-images-idx3-ubyte.gz".
	name string
	// sha256 is the hex digest of the file as published; empty when it
	// is not known, for files that are never downloaded (see check).
	sha256 string
	// contentSHA256 is the hex digest of the file's decompressed idx data.
	// A file whose own digest differs is still accepted if its content
	// matches: Debian's dataset-fashion-mnist, for one, ships the canonical
	// Fashion-MNIST deflate streams with the gzip header's file name
	// removed, so its files differ from the canonical downloads byte-wise
	// but not in content.
	contentSHA256 string
	// md5 is the hex md5 digest of the file as published, for files whose
	// sha256 is not known here but whose md5 is (the checksum their
	// publishers and torchvision give). It is checked only when sha256 is
	// empty, and makes the file downloadable like a sha256 does.
	md5 string
}

// pinned reports whether f has a recorded digest (sha256, or md5), which
// it is checked against and which allows downloading it.
func (s fileSpec) pinned() bool { return s.sha256 != "" || s.md5 != "" }

// check verifies the file open as f, which is named path in errors.
func (s fileSpec) check(path string, f io.ReadSeeker) error {
	if s.sha256 == "" && s.md5 != "" {
		got, err := md5Digest(f)
		if err != nil {
			return fmt.Errorf("computing md5 of %s: %w", path, err)
		}
		if got != s.md5 {
			return fmt.Errorf("%w for %s: md5 %s, want %s (the published md5; no sha256 is known)", ErrChecksum, path, got, s.md5)
		}
		return nil
	}
	got, err := digest(f)
	if err != nil {
		return fmt.Errorf("computing sha256 of %s: %w", path, err)
	}
	if got == s.sha256 || s.sha256 == "" {
		// An empty digest marks a file whose published digest is not
		// known here: it has no download location, so it can only come
		// from the user's own cache or mirror, and is accepted as is.
		return nil
	}
	if s.contentSHA256 != "" {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewinding %s: %w", path, err)
		}
		// A file that does not even decompress fails the check below.
		if content, err := contentDigest(f); err == nil && content == s.contentSHA256 {
			return nil
		}
	}
	return fmt.Errorf("%w for %s: sha256 %s, want %s", ErrChecksum, path, got, s.sha256)
}

// md5Digest returns the hex md5 digest of r's content.
func md5Digest(r io.Reader) (string, error) {
	h := md5.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digest returns the hex sha256 digest of r's content.
func digest(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// contentDigest returns the hex sha256 digest of r's content after
// decompression when r is gzip-compressed.
func contentDigest(r io.Reader) (string, error) {
	src, _, release, err := maybeGunzip(r)
	if err != nil {
		return "", err
	}
	defer release()
	return digest(src)
}

// verifyKey identifies a file version that has passed a check: the same
// path with the same size and modification time is not hashed again.
type verifyKey struct {
	path  string
	size  int64
	mtime int64
	want  string
}

// verified records the file versions that passed their checks in this
// process.
var verified = struct {
	sync.Mutex
	ok map[verifyKey]bool
}{ok: map[verifyKey]bool{}}

// verifyFile checks the file at path against s, skipping the hashing if the
// same version of the file already passed in this process.
func verifyFile(path string, s fileSpec) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verifying data file: %w", err)
	}
	defer f.Close()
	key, haveKey := fileKey(f, path, s)
	if haveKey {
		verified.Lock()
		ok := verified.ok[key]
		verified.Unlock()
		if ok {
			return nil
		}
	}
	if err := s.check(path, f); err != nil {
		return err
	}
	if haveKey {
		verified.Lock()
		verified.ok[key] = true
		verified.Unlock()
	}
	return nil
}

// markVerified records that the file at path passed its check against s.
func markVerified(path string, s fileSpec) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if key, ok := fileKey(f, path, s); ok {
		verified.Lock()
		verified.ok[key] = true
		verified.Unlock()
	}
}

// fileKey returns the cache key of the file open as f.
func fileKey(f *os.File, path string, s fileSpec) (verifyKey, bool) {
	fi, err := f.Stat()
	if err != nil {
		return verifyKey{}, false
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return verifyKey{}, false
	}
	return verifyKey{path: abs, size: fi.Size(), mtime: fi.ModTime().UnixNano(), want: s.sha256 + "/" + s.md5}, true
}

// forgetVerified empties the record of verified files.
func forgetVerified() {
	verified.Lock()
	clear(verified.ok)
	verified.Unlock()
}
