//go:build !unix

package kernels

import "time"

// processCPUTime returns 0: CPU time is not measured on this platform.
func processCPUTime() time.Duration { return 0 }
