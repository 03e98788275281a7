package checkpoint

import (
	"bufio"
	"fmt"
	"os"

	"github.com/flowood/flowood/internal/atomicfile"
)

// writeFileAtomic creates or replaces path with what fill writes. fill
// writes into a buffered temporary file in the same directory, which is
// flushed, synced, closed and renamed onto path only if everything
// succeeds; the directory is then synced so the rename is durable. On
// failure the temporary file is removed and path is left as it was. The
// new file has mode 0644.
func writeFileAtomic(path string, fill func(w *bufio.Writer) error) error {
	return atomicfile.Write(path, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<16)
		if err := fill(w); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	})
}

// syncDir makes renames and creations inside dir durable.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }
