package data

import (
	"embed"
	"fmt"
	"io"
	"strings"
)

// embeddedFS holds the subsets written by data/internal/gendata, with a README
// and SHA256SUMS describing them.
//
//go:embed embedded
var embeddedFS embed.FS

// embeddedDir is the directory of embeddedFS that holds the subsets.
const embeddedDir = "embedded"

// EmbeddedSubset describes a subset of a registered data set that is
// compiled into the package: the first N images, with their labels, of the
// data set's split, in their original order.
type EmbeddedSubset struct {
	Name  string // registry name, such as "fashionmnist"
	Split string // "train" or "test"
	N     int    // number of images, taken from the start of the split
}

// embeddedSubsets lists the compiled-in subsets. data/internal/gendata writes
// their files; changing N here requires running it again.
var embeddedSubsets = []EmbeddedSubset{
	{Name: "fashionmnist", Split: "train", N: 8000},
	{Name: "fashionmnist", Split: "test", N: 2000},
	{Name: "mnist", Split: "test", N: 2000},
	{Name: "notmnist", Split: "test", N: 2000},
}

// EmbeddedSubsets returns the subsets that LoadEmbedded can load.
func EmbeddedSubsets() []EmbeddedSubset {
	return append([]EmbeddedSubset(nil), embeddedSubsets...)
}

// ImagesFile returns the name of the subset's gzip-compressed idx3 image
// file in the embedded directory.
func (s EmbeddedSubset) ImagesFile() string {
	return s.Name + "-" + s.Split + "-images-idx3-ubyte.gz"
}

// LabelsFile returns the name of the subset's gzip-compressed idx1 label
// file in the embedded directory.
func (s EmbeddedSubset) LabelsFile() string {
	return s.Name + "-" + s.Split + "-labels-idx1-ubyte.gz"
}

// String returns the subset as "name/split[:N]".
func (s EmbeddedSubset) String() string {
	return fmt.Sprintf("%s/%s[:%d]", s.Name, s.Split, s.N)
}

// LoadEmbedded returns the subset of split of the named data set that is
// compiled into the package: the first 8000 images of fashionmnist train,
// and the first 2000 of the test splits of fashionmnist, mnist and notmnist
// (see EmbeddedSubsets). It needs no files or network. For any other split
// it returns an error wrapping ErrNotFound.
func LoadEmbedded(name, split string) (*Images, error) {
	if _, _, err := lookup(name, split); err != nil {
		return nil, err
	}
	name = strings.ToLower(name)
	var sub EmbeddedSubset
	found := false
	for _, s := range embeddedSubsets {
		if s.Name == name && s.Split == split {
			sub, found = s, true
		}
	}
	if !found {
		var have []string
		for _, s := range embeddedSubsets {
			have = append(have, s.Name+" "+s.Split)
		}
		return nil, fmt.Errorf("loading embedded %s %s: %w: no embedded subset (embedded: %s)",
			name, split, ErrNotFound, strings.Join(have, ", "))
	}

	var im *Images
	err := readEmbedded(sub.ImagesFile(), func(r io.Reader) (err error) {
		im, err = ReadIDXImages(r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading embedded %s %s: %w", name, split, err)
	}
	var labels []uint8
	err = readEmbedded(sub.LabelsFile(), func(r io.Reader) (err error) {
		labels, err = ReadIDXLabels(r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading embedded %s %s: %w", name, split, err)
	}
	if im.N != sub.N || len(labels) != sub.N {
		return nil, fmt.Errorf("loading embedded %s %s: have %d images and %d labels, want %d of each",
			name, split, im.N, len(labels), sub.N)
	}
	im.Name, im.Split, im.Labels = name, split, labels
	im.Source = "embedded:" + sub.ImagesFile()
	im.withOrigin(name)
	return im, nil
}

// readEmbedded opens an embedded file and passes it to decode, naming the
// file in any error.
func readEmbedded(file string, decode func(io.Reader) error) error {
	f, err := embeddedFS.Open(embeddedDir + "/" + file)
	if err != nil {
		return fmt.Errorf("opening embedded file: %w", err)
	}
	defer f.Close()
	if err := decode(f); err != nil {
		return fmt.Errorf("reading embedded file %s: %w", file, err)
	}
	return nil
}
