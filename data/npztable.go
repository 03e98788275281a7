package data

import (
	"archive/zip"
	"fmt"
	"sort"
	"strings"
)

// TableSplitNames are the array names of an .npz table file (numpy.savez
// keys) that are read as splits, in this order: "train", "val" and
// "test", rows x features each (any float or integer dtype, finite);
// "embeddings", the key LoadEmbeddings reads, is a split of its own (a
// file with only it serves as an OOD set). Other arrays are ignored.
var TableSplitNames = []string{"train", "val", "test", "embeddings"}

// IsTableFile reports whether name is a path to an .npz table file
// (by its extension) rather than the name of a registered data set.
func IsTableFile(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".npz") }

// TableFileSplits returns the splits (TableSplitNames) that the .npz file
// at path holds, in TableSplitNames order, reading only its member names.
// A file with none of them is an error that lists the arrays it has.
func TableFileSplits(path string) ([]string, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: not a readable npz (zip) archive: %w", path, err)
	}
	defer zr.Close()
	have := map[string]bool{}
	var keys []string
	for _, f := range zr.File {
		if key, ok := strings.CutSuffix(f.Name, ".npy"); ok {
			have[key] = true
			keys = append(keys, key)
		}
	}
	var splits []string
	for _, s := range TableSplitNames {
		if have[s] {
			splits = append(splits, s)
		}
	}
	if len(splits) == 0 {
		sort.Strings(keys)
		return nil, fmt.Errorf("reading %s: no array named %s (has: %s)", path, strings.Join(TableSplitNames, ", "), strings.Join(keys, ", "))
	}
	return splits, nil
}

// LoadTableFile returns the array split (one of TableSplitNames) of the
// .npz file at path as a table; its Name is path. Errors name the file
// and the array.
func LoadTableFile(path, split string) (*Tabular, error) {
	arrays, err := ReadNPZ(path)
	if err != nil {
		return nil, err
	}
	a, ok := arrays[split]
	if !ok {
		keys := make([]string, 0, len(arrays))
		for k := range arrays {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, fmt.Errorf("reading %s: no array %q (has: %s)", path, split, strings.Join(keys, ", "))
	}
	t, err := a.Tabular(path, split)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return t, nil
}
