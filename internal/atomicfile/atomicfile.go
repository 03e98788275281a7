// Package atomicfile writes files so that readers see either the old
// content or the complete new one, never a mix: through a temporary file
// in the same directory, synced, then renamed into place.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Write creates path with the content that fill writes to a temporary
// file in the same directory. The temporary file is synced, closed and
// renamed to path only if fill succeeds; otherwise it is removed and path is
// left as it was. The new file has mode 0644.
func Write(path string, fill func(f *os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("setting mode of temporary file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing temporary file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing temporary file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming temporary file into place: %w", err)
	}
	// Make the rename itself durable; failure here loses nothing already
	// written, so it is not reported.
	SyncDir(dir)
	return nil
}

// WriteFile creates or replaces path with b (mode 0644), atomically.
func WriteFile(path string, b []byte) error {
	err := Write(path, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// SyncDir makes renames and creations inside dir durable. Windows cannot
// sync directories (and does not need to), so it is a no-op there.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
