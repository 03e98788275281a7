package data

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// The data sets of feature vectors (miniboone, hepmass, embeddings) and the
// image data sets that this machine cannot fetch (svhn, imagenet64).
//
// Files whose published sha256 is not known here are registered with an
// empty digest and no download location: they are read from the cache or
// the mirror only, as placed there by the user (see fileSpec.check).
func init() {
	registry["miniboone"] = dataset{tabular: true, splits: map[string]splitFiles{
		// MINIBOONE as preprocessed for MAF (Papamakarios et al., 2017):
		// signal events only, 43 standardised features, float64 .npy, from
		// github.com/vsimkus/variational-gibbs-inference at 3d105ec (the
		// offline mirror's copy). No download location is registered.
		"val":  {forms: []form{npyForm("val.npy", "104f35c387c982cd550e5d6142e8b4075d746001508e65c1a90efcb83301839d")}},
		"test": {forms: []form{npyForm("test.npy", "01b3fc605f334e951fed477a09a7fcd69cdc440d9204111ca253ecdf0e7590de")}},
		// The raw UCI file, both classes (label 1 signal, 0 background),
		// 50 features. Canonical URL:
		// https://archive.ics.uci.edu/ml/machine-learning-databases/00199/MiniBooNE_PID.txt
		// Its sha256 is not known here (the site cannot be reached from
		// this machine), so the form has no download location: cache or
		// mirror only.
		"raw": {forms: []form{{
			what:  "UCI text file",
			files: []fileSpec{{name: "MiniBooNE_PID.txt"}},
			loadTab: func(name, split string, paths []string, _ Options) (*Tabular, error) {
				return ReadMiniBooNERawFile(paths[0])
			},
		}}},
	}}
	// HEPMASS, the "1000" subset (mass 1000), both classes: label column 0
	// (1 signal, 0 background), 27 features and the mass. Published at
	// https://archive.ics.uci.edu/ml/machine-learning-databases/00347/ as
	// 1000_train.csv.gz and 1000_test.csv.gz; their sha256 is not known
	// here, so cache or mirror only. LoadTabular returns all 28 feature
	// columns; HEPMASSFeatureColumns gives the feature selection of MAF
	// and of the paper (computed on both classes: see its doc).
	registry["hepmass"] = dataset{tabular: true, splits: map[string]splitFiles{
		"train": {forms: []form{hepmassForm("1000_train.csv.gz")}},
		"test":  {forms: []form{hepmassForm("1000_test.csv.gz")}},
	}}
	// Embeddings of images by a pretrained network: an .npz with key
	// "embeddings" (rows x dimension), read from a path with
	// LoadEmbeddings. No files are registered.
	registry["embeddings"] = dataset{tabular: true, note: "npz given by path: data.LoadEmbeddings(PATH)", splits: map[string]splitFiles{}}
	// SVHN cropped digits, published at http://ufldl.stanford.edu/housenumbers/
	// as train_32x32.mat and test_32x32.mat (MATLAB v5). Their sha256
	// digests (and sizes, 182,040,794 and 64,275,384 bytes) are the ones
	// TensorFlow Datasets records for these downloads
	// (url_checksums/svhn_cropped.txt); this machine cannot reach the site
	// to check them against a download.
	registry["svhn"] = dataset{splits: map[string]splitFiles{
		"train": {forms: []form{svhnForm("train", "435e94d69a87fde4fd4d7f3dd208dfc32cb6ae8af2240d066de1df7508d083b8")}},
		"test":  {forms: []form{svhnForm("test", "cdce80dfb2a2c4c6160906d0bd7c68ec5a99d7ca4831afa54f09182025b6a75b")}},
	}}
	// Downsampled ImageNet 64x64 in two published forms. First, the one
	// of van den Oord et al. (2016) that Glow and RealNVP, and so the
	// paper, used: train_64x64.tar and valid_64x64.tar of PNG images from
	// http://image-net.org/small/ (no labels), with the sha256 digests and
	// sizes (12,112,588,800 and 477,255,680 bytes) that TensorFlow
	// Datasets records for them (url_checksums/downsampled_imagenet.txt);
	// the site no longer serves them, and this machine could not check
	// them. Second, the npz batches of Chrabaszcz et al. (2017),
	// Imagenet64_train_npz.zip and Imagenet64_val_npz.zip unpacked: no
	// sha256 known, cache or mirror only. Their labels (1000 classes) do
	// not fit Images.Labels and are dropped; ReadImageNet64Batch returns
	// them.
	var train []fileSpec
	for i := 1; i <= 10; i++ {
		train = append(train, fileSpec{name: "train_data_batch_" + strconv.Itoa(i) + ".npz"})
	}
	registry["imagenet64"] = dataset{splits: map[string]splitFiles{
		"train": {forms: []form{
			imageNetTarForm("train_64x64.tar", "e2a2c1947a748d0d256e98e6d82800d855441dc9e4de2e71a773f1324c4524d7"),
			{what: "npz batches", files: train, load: loadImageNet64},
		}},
		"val": {forms: []form{
			imageNetTarForm("valid_64x64.tar", "eeac03ec4f585baf871d2b4cb9c974bfe345e74878a74e5820fe6eb1041629cd"),
			{what: "npz batch", files: []fileSpec{{name: "val_data.npz"}}, load: loadImageNet64},
		}},
	}}
}

// imageNetTarForm is a tar of the 64x64 PNG images of van den Oord et
// al.'s downsampled ImageNet, without labels.
func imageNetTarForm(file, sha string) form {
	return form{
		what:  "PNG tar",
		url:   "http://image-net.org/small/",
		files: []fileSpec{{name: file, sha256: sha}},
		load: func(name, split string, paths []string, _ Options) (*Images, error) {
			im, _, err := ReadImageArchive(paths[0], ArchiveOptions{H: 64, W: 64, NoLabels: true})
			return im, err
		},
	}
}

func npyForm(file, sha string) form {
	return form{
		what:  "MAF npy",
		files: []fileSpec{{name: file, sha256: sha}},
		loadTab: func(name, split string, paths []string, _ Options) (*Tabular, error) {
			a, err := ReadNPYFile(paths[0])
			if err != nil {
				return nil, err
			}
			t, err := a.Tabular(name, split)
			if err != nil {
				return nil, fmt.Errorf("reading %s: %w", paths[0], err)
			}
			return t, nil
		},
	}
}

func hepmassForm(file string) form {
	return form{
		what:  "UCI csv.gz",
		files: []fileSpec{{name: file}},
		loadTab: func(name, split string, paths []string, _ Options) (*Tabular, error) {
			return ReadHEPMASSFile(paths[0])
		},
	}
}

func svhnForm(split, sha string) form {
	return form{
		what:  "MATLAB v5",
		url:   "http://ufldl.stanford.edu/housenumbers/",
		files: []fileSpec{{name: split + "_32x32.mat", sha256: sha}},
		load: func(name, split string, paths []string, _ Options) (*Images, error) {
			return ReadSVHNFile(paths[0], split)
		},
	}
}

// ReadHEPMASSFile reads a HEPMASS csv file (gzip-compressed or not) with
// a header line and the class label in column 0, as published by UCI.
func ReadHEPMASSFile(path string) (*Tabular, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading HEPMASS file: %w", err)
	}
	defer f.Close()
	r, _, release, err := maybeGunzip(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer release()
	return ReadCSV(r, path, CSVOptions{Header: true, Label: true, LabelColumn: 0})
}

// LoadTabular returns split split of the tabular data set name (miniboone:
// "val", "test" or "raw"; hepmass: "train" or "test"), located and
// verified as Load does.
func LoadTabular(name, split string, opts Options) (*Tabular, error) {
	ds, err := lookupDataset(name)
	if err != nil {
		return nil, err
	}
	name = strings.ToLower(name)
	if !ds.tabular {
		return nil, fmt.Errorf("loading %s %s: it is an image data set; use Load", name, split)
	}
	if ds.note != "" {
		return nil, fmt.Errorf("loading %s %s: it has no registered files (%s)", name, split, ds.note)
	}
	ds, sp, err := lookup(name, split)
	if err != nil {
		return nil, err
	}
	fm, paths, _, err := resolveForm(name, split, ds, sp, opts)
	if err != nil {
		return nil, err
	}
	return readTabForm(name, split, fm, paths, opts)
}

// readTabForm reads the located files of tabular form fm.
func readTabForm(name, split string, fm form, paths []string, opts Options) (*Tabular, error) {
	t, err := fm.loadTab(name, split, paths, opts)
	if err != nil {
		return nil, fmt.Errorf("loading %s %s: %w", name, split, err)
	}
	t.Name, t.Split = name, split
	return t, nil
}

// LoadEmbeddings reads the array under key "embeddings" of the .npz file at
// path as a table of rows x dimension (any float or integer dtype, 2-D,
// finite). The result's Name is "embeddings".
func LoadEmbeddings(path string) (*Tabular, error) {
	arrays, err := ReadNPZ(path)
	if err != nil {
		return nil, err
	}
	a, ok := arrays["embeddings"]
	if !ok {
		keys := make([]string, 0, len(arrays))
		for k := range arrays {
			keys = append(keys, k)
		}
		return nil, fmt.Errorf("reading %s: no array \"embeddings\" (has: %s)", path, strings.Join(keys, ", "))
	}
	t, err := a.Tabular("embeddings", "")
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return t, nil
}

// ReadImageNet64Batch reads one batch of downsampled ImageNet
// (train_data_batch_K.npz or val_data.npz): key "data", uint8 of N rows of
// 3*S*S values (S = 64 for ImageNet64, 32 for ImageNet32), each row the
// red, green and blue planes of an S x S image in turn; and key "labels",
// N integers 1..1000. It returns the images (NHWC, no labels) and the
// labels as 0..999. Errors name the file and the problem.
func ReadImageNet64Batch(path string) (*Images, []int, error) {
	arrays, err := ReadNPZ(path)
	if err != nil {
		return nil, nil, err
	}
	im, labels, err := imageNetBatch(arrays)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	im.Source = path
	return im, labels, nil
}

func imageNetBatch(arrays map[string]*Array) (*Images, []int, error) {
	x, y := arrays["data"], arrays["labels"]
	if x == nil || y == nil {
		return nil, nil, fmt.Errorf("downsampled ImageNet batch needs arrays \"data\" and \"labels\"")
	}
	if x.DType != "|u1" && x.DType != "<u1" {
		return nil, nil, fmt.Errorf("array \"data\" has dtype %s, want uint8", x.DType)
	}
	if len(x.Shape) != 2 {
		return nil, nil, fmt.Errorf("array \"data\" has shape %s, want N x 3*S*S", shapeString(x.Shape))
	}
	n, d := x.Shape[0], x.Shape[1]
	s := int(math.Round(math.Sqrt(float64(d) / 3)))
	if d == 0 || 3*s*s != d {
		return nil, nil, fmt.Errorf("array \"data\" has %d values per image, not 3*S*S for any side S", d)
	}
	if y.Len() != n || len(y.Shape) > 2 {
		return nil, nil, fmt.Errorf("array \"labels\" has shape %s, want %d labels", shapeString(y.Shape), n)
	}
	var labels []int
	switch y.DType {
	case "<i8", "<i4", "|u1", "<u1":
		for _, v := range y.Float64() {
			if v < 1 || v > 1000 {
				return nil, nil, fmt.Errorf("label %d is %v, want 1..1000", len(labels), v)
			}
			labels = append(labels, int(v)-1)
		}
	default:
		return nil, nil, fmt.Errorf("array \"labels\" has dtype %s, want an integer type", y.DType)
	}
	im := &Images{N: n, H: s, W: s, C: 3, Pix: make([]uint8, len(x.U8))}
	plane := s * s
	for m := range n {
		src := x.U8[m*d : (m+1)*d]
		dst := im.Pix[m*d : (m+1)*d]
		for c := range 3 {
			for p := range plane {
				dst[p*3+c] = src[c*plane+p]
			}
		}
	}
	return im, labels, nil
}

// loadImageNet64 reads and concatenates the batches of a split.
func loadImageNet64(name, split string, paths []string, _ Options) (*Images, error) {
	var out *Images
	for _, p := range paths {
		im, _, err := ReadImageNet64Batch(p)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = im
			continue
		}
		if im.H != out.H {
			return nil, fmt.Errorf("%s holds %dx%d images, but %s holds %dx%d", p, im.H, im.W, out.Source, out.H, out.W)
		}
		out.Pix = append(out.Pix, im.Pix...)
		out.N += im.N
	}
	if len(paths) > 1 {
		out.Source = strings.Join(paths, ",")
	}
	return out, nil
}
