//go:build unix

package runfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes an exclusive advisory lock (flock) on RUN/.lock, creating
// the run folder and the file, without waiting: if another process holds
// it, Lock returns an error wrapping ErrLocked that names the lock file.
// The returned function releases the lock (the file stays, so a process
// waiting on it never locks a file removed under it). The lock goes with
// the process: one that is killed leaves an unlocked file behind.
func Lock(run string) (unlock func(), err error) {
	if err := os.MkdirAll(run, 0o755); err != nil {
		return nil, fmt.Errorf("creating run folder: %w", err)
	}
	path := filepath.Join(run, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by another flowood process writing to %s", ErrLocked, path, run)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
