package runfile

import "errors"

// LockFile is the name of the lock file in a run folder (see Lock).
const LockFile = ".lock"

// ErrLocked is wrapped by the error Lock returns when another process
// holds the run folder's lock.
var ErrLocked = errors.New("run folder is in use")
