package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// DefaultDebianDir is where Debian's dataset-fashion-mnist package installs
// the Fashion-MNIST files.
const DefaultDebianDir = "/usr/share/datasets/fashion-mnist"

// Options controls where Load looks for data files. The zero value uses the
// environment: the cache under $XDG_CACHE_HOME (or ~/.cache), the mirror
// named by $FLOWOOD_MIRROR, Debian's package directory, and downloads.
type Options struct {
	// CacheDir is the cache root; files of data set NAME are kept in
	// CacheDir/NAME. Empty means $XDG_CACHE_HOME/flowood, or
	// ~/.cache/flowood when XDG_CACHE_HOME is not set.
	CacheDir string
	// Mirror is the root of a local mirror laid out as Mirror/NAME/FILE.
	// Empty means $FLOWOOD_MIRROR; when that is empty too, no mirror is
	// consulted.
	Mirror string
	// DebianDir is where the Fashion-MNIST files of Debian's
	// dataset-fashion-mnist package are looked for. Empty means
	// DefaultDebianDir. Only fashionmnist is looked for there.
	DebianDir string
	// NoDownload forbids downloading: a file found in none of the local
	// places is an error wrapping ErrNotFound.
	NoDownload bool
	// BaseURL replaces the canonical download locations: file FILE of data
	// set NAME is fetched from BaseURL/NAME/FILE, the mirror's layout.
	// Empty means the canonical URLs.
	BaseURL string
	// Progress, if not nil, receives a line when a download starts, at
	// every tenth of its progress, and when it ends.
	Progress io.Writer
	// Embedded makes Load return the subset compiled into the package, as
	// LoadEmbedded does, and ignore every other source.
	Embedded bool
	// Size, if positive, makes Load resize the images to Size x Size (area
	// averaging when shrinking, bilinear otherwise; see Resize). For celeba
	// the faces are first centre-cropped to 74x74 (148x148 at full
	// resolution), the setting of the paper for 32x32 and 64x64.
	Size int
	// ResizeMethod, if not empty, is the method of Size's resize instead
	// (pixels.Area, pixels.Bilinear or pixels.Nearest; see ResizeWith):
	// to measure how much the resizing of an OOD set matters.
	ResizeMethod string
	// Channels, if positive, makes Load convert the images to 1 (grayscale)
	// or 3 (RGB) channels; see Grayscale and RGB.
	Channels int
}

// convert applies Size and Channels to im.
func (o Options) convert(im *Images) (*Images, error) {
	var err error
	switch o.Channels {
	case 0:
	case 1:
		im = Grayscale(im)
	case 3:
		im = RGB(im)
	default:
		return nil, fmt.Errorf("Options.Channels is %d, want 1 or 3 (or 0 to keep the data set's)", o.Channels)
	}
	if o.Size < 0 {
		return nil, fmt.Errorf("Options.Size is %d, want a positive size (or 0 to keep the data set's)", o.Size)
	}
	if o.Size > 0 && (im.H != o.Size || im.W != o.Size) {
		if im, err = o.resize(im); err != nil {
			return nil, err
		}
	}
	return im, nil
}

// resize resizes im to Size x Size by ResizeMethod (AutoMethod's when
// empty).
func (o Options) resize(im *Images) (*Images, error) {
	if o.ResizeMethod == "" {
		return Resize(im, o.Size, o.Size)
	}
	return ResizeWith(im, o.Size, o.Size, o.ResizeMethod)
}

// cacheDir returns the cache root, or "" when none can be determined.
func (o Options) cacheDir() string {
	if o.CacheDir != "" {
		return o.CacheDir
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "flowood")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".cache", "flowood")
	}
	return ""
}

// mirror returns the mirror root, or "" when there is none.
func (o Options) mirror() string {
	if o.Mirror != "" {
		return o.Mirror
	}
	return os.Getenv("FLOWOOD_MIRROR")
}

// debianDir returns the Debian package directory.
func (o Options) debianDir() string {
	if o.DebianDir != "" {
		return o.DebianDir
	}
	return DefaultDebianDir
}
