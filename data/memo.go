package data

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// Load keeps the last few image sets it read from files (memoEntries),
// keyed by data set, split, the files' paths, sizes and modification
// times, and every option; a repeated Load of the same files with the
// same options returns them again instead of decoding the files anew
// (a `flowood reproduce` run reads CIFAR-10 and CelebA once per model and
// evaluation: about 10 s of JPEG decoding each time). Each call gets its
// own Images value; the pixel and label slices are shared, and no code
// writes to the pixels of an Images it did not make.
const memoEntries = 6

var memo struct {
	sync.Mutex
	keys []string
	ims  []*Images
}

// memoKey returns the key of a read, or false when a file cannot be
// examined (the read then reports the error).
func memoKey(name, split string, paths []string, opts Options) (string, bool) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\x00%s\x00", name, split)
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", false
		}
		fmt.Fprintf(&b, "%s\x00%d\x00%d\x00", p, fi.Size(), fi.ModTime().UnixNano())
	}
	opts.Progress = nil
	fmt.Fprintf(&b, "%#v", opts)
	return b.String(), true
}

// memoGet returns a copy of the images read under key, if kept.
func memoGet(key string) (*Images, bool) {
	memo.Lock()
	defer memo.Unlock()
	for i, k := range memo.keys {
		if k == key {
			c := *memo.ims[i]
			return &c, true
		}
	}
	return nil, false
}

// memoPut keeps a copy of im under key, dropping the oldest entry when
// full.
func memoPut(key string, im *Images) {
	c := *im
	memo.Lock()
	defer memo.Unlock()
	if len(memo.keys) == memoEntries {
		memo.keys, memo.ims = memo.keys[1:], memo.ims[1:]
	}
	memo.keys = append(memo.keys, key)
	memo.ims = append(memo.ims, &c)
}
