package data

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnknownDataset is returned, wrapped with the list of known names, when
// a data set name is not in the registry.
var ErrUnknownDataset = errors.New("unknown dataset")

// ErrUnknownSplit is returned, wrapped with the splits that exist, when a
// data set has no split of the requested name.
var ErrUnknownSplit = errors.New("unknown split")

// dataset is a registry entry: where a data set's files are published and
// how to verify and read them.
type dataset struct {
	// url is the canonical download location of the idx files, ending in a
	// slash; entries whose splits list their own forms leave it empty.
	url string
	// debian is whether Debian's dataset-fashion-mnist directory holds it.
	debian bool
	// splits maps a split name to its files.
	splits map[string]splitFiles
	// tabular is set for data sets of feature vectors, read with
	// LoadTabular rather than Load.
	tabular bool
	// note, if set, says how a data set without registered files is read
	// (embeddings: LoadEmbeddings with a path).
	note string
}

// splitFiles describes how one split is published. The idx data sets give
// their image and label files; any other data set lists forms instead.
type splitFiles struct {
	images, labels fileSpec
	// forms lists the ways the split is published, in order of preference;
	// when empty the split is the idx pair images, labels.
	forms []form
}

// loader reads the files of one form, given in the order of form.files,
// into an image set. name and split are the registry names, for errors.
type loader func(name, split string, paths []string, opts Options) (*Images, error)

// form is one published form of a split: the files that make it up, where
// to download them, and how to read them.
type form struct {
	// what describes the form in messages, such as "JPEG zip".
	what string
	// url is the download location of the files, ending in a slash; empty
	// when the form is only found in a cache or mirror.
	url string
	// files lists the files, all of which must be present.
	files []fileSpec
	// load reads the located files of an image data set.
	load loader
	// loadTab reads the located files of a tabular data set.
	loadTab tabLoader
}

// tabLoader reads the files of one form of a tabular data set.
type tabLoader func(name, split string, paths []string, opts Options) (*Tabular, error)

// formsOf returns the forms of split sp of ds.
func formsOf(ds dataset, sp splitFiles) []form {
	if len(sp.forms) > 0 {
		return sp.forms
	}
	return []form{{what: "idx", url: ds.url, files: []fileSpec{sp.images, sp.labels}, load: loadIDX}}
}

// registry holds the known data sets. The sha256 digests of the files are
// those of the published files; the content digests are of their
// decompressed idx data (see fileSpec).
var registry = map[string]dataset{
	"mnist": {
		// PyTorch's copy of the canonical MNIST files, which are no longer
		// served by their original site.
		url: "https://ossci-datasets.s3.amazonaws.com/mnist/",
		splits: map[string]splitFiles{
			"train": {
				images: fileSpec{
					name:          "train-images-idx3-ubyte.gz",
					sha256:        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
					contentSHA256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
				},
				labels: fileSpec{
					name:          "train-labels-idx1-ubyte.gz",
					sha256:        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
					contentSHA256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
				},
			},
			"test": {
				images: fileSpec{
					name:          "t10k-images-idx3-ubyte.gz",
					sha256:        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
					contentSHA256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
				},
				labels: fileSpec{
					name:          "t10k-labels-idx1-ubyte.gz",
					sha256:        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
					contentSHA256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
				},
			},
		},
	},
	"fashionmnist": {
		url:    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
		debian: true,
		// The file digests are those of Debian's copies (the offline
		// mirror's files), which lack the gzip file name field of the
		// canonical downloads; the canonical files are accepted by their
		// content digests.
		splits: map[string]splitFiles{
			"train": {
				images: fileSpec{
					name:          "train-images-idx3-ubyte.gz",
					sha256:        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
					contentSHA256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
				},
				labels: fileSpec{
					name:          "train-labels-idx1-ubyte.gz",
					sha256:        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
					contentSHA256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
				},
			},
			"test": {
				images: fileSpec{
					name:          "t10k-images-idx3-ubyte.gz",
					sha256:        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
					contentSHA256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
				},
				labels: fileSpec{
					name:          "t10k-labels-idx1-ubyte.gz",
					sha256:        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
					contentSHA256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
				},
			},
		},
	},
	"notmnist": {
		// notMNIST converted to idx by github.com/davidflanagan/notMNIST-to-MNIST,
		// pinned to commit 17823f4 (the commit the offline mirror was taken
		// from). The full hash is as recorded in a public index of that
		// repository; the checksums below protect against a wrong pin.
		// Only the test split (10,000 images) is published.
		url: "https://raw.githubusercontent.com/davidflanagan/notMNIST-to-MNIST/17823f4d4a3acd8317c07866702d2eb2ac79c7a0/",
		splits: map[string]splitFiles{
			"test": {
				images: fileSpec{
					name:          "t10k-images-idx3-ubyte.gz",
					sha256:        "70ae9e06201f2827e5b0a3781a3169d735dd2efc69996b9eeaee7f10ed4044d7",
					contentSHA256: "8e7f38ae95cc8f48e0986175ffc9137e5007ebcf3d8fdf6656c904eb9dab198b",
				},
				labels: fileSpec{
					name:          "t10k-labels-idx1-ubyte.gz",
					sha256:        "1fa03836e01c862542f8eb83463bb951bebec6fcb3efa28dad748c6b38a9021b",
					contentSHA256: "5f8e6012f2ce730700d8d05fca098bc47f71d25b890e4bec7ac5ebfd614a4001",
				},
			},
		},
	},
}

// Names returns the names of the registered data sets in sorted order.
func Names() []string {
	names := make([]string, 0, len(registry))
	for name := range registry {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Splits returns the split names that data set name has, in sorted order.
func Splits(name string) ([]string, error) {
	ds, err := lookupDataset(name)
	if err != nil {
		return nil, err
	}
	return sortedSplits(ds), nil
}

// Load returns split ("train" or "test", or "val" for tinyimagenet) of the
// named data set (see Names), with one label per image where the data set
// has labels. Each file is taken from the first of these places that has it:
// the cache, the mirror, Debian's package directory (fashionmnist only), and
// finally a download from the canonical URL (or Options.BaseURL) into the
// cache. A split published in several forms (cifar10: the mirror's JPEG zips
// or the canonical binary tarball) is read from the first form whose files
// are all present locally, or else downloaded in the first downloadable
// form. Every file is checked against its recorded sha256 digest; a file
// that fails is an error wrapping ErrChecksum, not a reason to try the next
// place. With Options.Embedded set, Load returns the embedded subset
// instead, as LoadEmbedded does. Options.Size and Options.Channels then
// convert the images (see Options).
func Load(name, split string, opts Options) (*Images, error) {
	ds, sp, err := lookup(name, split)
	if err != nil {
		return nil, err
	}
	if ds.tabular {
		return nil, fmt.Errorf("loading %s %s: it is a tabular data set; use LoadTabular", strings.ToLower(name), split)
	}
	var im *Images
	if opts.Embedded {
		im, err = LoadEmbedded(name, split)
	} else {
		name = strings.ToLower(name)
		im, err = loadFiles(name, split, ds, sp, opts)
	}
	if err != nil {
		return nil, err
	}
	im, err = opts.convert(im)
	if err != nil {
		return nil, fmt.Errorf("loading %s %s: %w", name, split, err)
	}
	return im, nil
}

// loadFiles locates the files of one form of a split and reads them.
func loadFiles(name, split string, ds dataset, sp splitFiles, opts Options) (*Images, error) {
	fm, paths, _, err := resolveForm(name, split, ds, sp, opts)
	if err != nil {
		return nil, err
	}
	return readForm(name, split, fm, paths, opts)
}

// resolveForm locates the files of one form of a split, downloading them
// when no form is entirely present locally, and returns the form, the
// paths of its files and where they were found (see placesOf).
func resolveForm(name, split string, ds dataset, sp splitFiles, opts Options) (form, []string, string, error) {
	forms := formsOf(ds, sp)
	fm := forms[0]
	if len(forms) > 1 {
		// Prefer a form that is entirely present locally; otherwise the
		// first one that can be downloaded.
		found := false
		var searched []string
		for _, f := range forms {
			paths, places, where, err := opts.locateAllLocalAt(name, ds, f)
			if err != nil {
				return form{}, nil, "", fmt.Errorf("loading %s %s: %w", name, split, err)
			}
			if paths != nil {
				return f, paths, placesOf(places), nil
			}
			searched = append(searched, where)
		}
		for _, f := range forms {
			if f.url != "" || opts.BaseURL != "" {
				fm, found = f, true
				break
			}
		}
		if !found {
			return form{}, nil, "", fmt.Errorf("loading %s %s: %w: %s", name, split, ErrNotFound, strings.Join(searched, "; "))
		}
	}
	paths := make([]string, len(fm.files))
	places := make([]string, len(fm.files))
	for i, f := range fm.files {
		p, place, _, err := opts.locateLocalAt(name, ds.debian, f)
		if err == nil && p == "" {
			place = "download"
			p, err = opts.locate(name, ds.debian, fm.url, f)
		}
		if err != nil {
			return form{}, nil, "", fmt.Errorf("loading %s %s: %w", name, split, err)
		}
		paths[i], places[i] = p, place
	}
	return fm, paths, placesOf(places), nil
}

// placesOf joins the distinct places of a form's files with "+".
func placesOf(places []string) string {
	var out []string
	for _, p := range places {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return strings.Join(out, "+")
}

// readForm reads the located files of form fm and names the result.
func readForm(name, split string, fm form, paths []string, opts Options) (*Images, error) {
	key, keep := memoKey(name, split, paths, opts)
	if keep {
		if im, ok := memoGet(key); ok {
			return im, nil
		}
	}
	im, err := fm.load(name, split, paths, opts)
	if err != nil {
		return nil, fmt.Errorf("loading %s %s: %w", name, split, err)
	}
	im.Name, im.Split = name, split
	im.withOrigin(name)
	if keep {
		memoPut(key, im)
	}
	return im, nil
}

// loadIDX reads an idx image file and its label file.
func loadIDX(name, split string, paths []string, _ Options) (*Images, error) {
	imgPath, lblPath := paths[0], paths[1]
	im, err := ReadIDXImagesFile(imgPath)
	if err != nil {
		return nil, err
	}
	labels, err := ReadIDXLabelsFile(lblPath)
	if err != nil {
		return nil, err
	}
	if len(labels) != im.N {
		return nil, fmt.Errorf("%s has %d images but %s has %d labels", imgPath, im.N, lblPath, len(labels))
	}
	im.Labels = labels
	return im, nil
}

// lookup finds a data set and one of its splits.
func lookup(name, split string) (dataset, splitFiles, error) {
	ds, err := lookupDataset(name)
	if err != nil {
		return dataset{}, splitFiles{}, err
	}
	sp, ok := ds.splits[split]
	if !ok {
		return dataset{}, splitFiles{}, fmt.Errorf("%w: dataset %s has no %q split (it has: %s)",
			ErrUnknownSplit, strings.ToLower(name), split, strings.Join(sortedSplits(ds), ", "))
	}
	return ds, sp, nil
}

// lookupDataset finds a data set by name, ignoring case.
func lookupDataset(name string) (dataset, error) {
	ds, ok := registry[strings.ToLower(name)]
	if !ok {
		return dataset{}, fmt.Errorf("%w %q (known: %s)", ErrUnknownDataset, name, strings.Join(Names(), ", "))
	}
	return ds, nil
}

// sortedSplits returns the split names of ds in sorted order.
func sortedSplits(ds dataset) []string {
	splits := make([]string, 0, len(ds.splits))
	for s := range ds.splits {
		splits = append(splits, s)
	}
	slices.Sort(splits)
	return splits
}
