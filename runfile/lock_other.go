//go:build !unix

package runfile

import (
	"fmt"
	"os"
)

// Lock creates the run folder and does nothing else where flock is not
// available: two trainings into one run folder are not guarded there.
func Lock(run string) (unlock func(), err error) {
	if err := os.MkdirAll(run, 0o755); err != nil {
		return nil, fmt.Errorf("creating run folder: %w", err)
	}
	return func() {}, nil
}
