// Package data loads the real image datasets used to reproduce Kirichenko,
// Izmailov and Wilson (2020), "Why Normalizing Flows Fail to Detect
// Out-of-Distribution Data": FashionMNIST as the in-distribution data set,
// MNIST and notMNIST as out-of-distribution data.
//
// All three are distributed in the idx format of the original MNIST files;
// ReadIDXImages, ReadIDXLabels and their writers handle it, gzip-compressed or
// raw. Load finds a data set's files, in this order, in the user's cache
// directory, in a local mirror named by FLOWOOD_MIRROR, in Debian's
// dataset-fashion-mnist package, and finally by downloading the canonical
// files into the cache. Every file is checked against a sha256 digest recorded
// in this package before it is used.
//
// The colour image data sets cifar10, celeba and tinyimagenet are read from
// zip or tar archives or folders of JPEG and PNG images (ReadImageArchive,
// labels from folder names) or, for cifar10, from the canonical binary
// batches (ReadCIFARBatch, ReadCIFARTarball). CenterCrop, Resize, Grayscale
// and RGB convert image sets, and Options.Size and Options.Channels apply
// them in Load.
//
// svhn (MATLAB v5 .mat, ReadSVHNFile) and imagenet64 (downsampled ImageNet
// npz batches, ReadImageNet64Batch) are image data sets whose files are
// read from the cache or the mirror only: their published sha256 digests
// are not recorded here, so they are never downloaded.
//
// The tabular data sets miniboone (the MAF-preprocessed npy splits val and
// test, and the raw UCI file as split "raw") and hepmass (the "1000"
// subset's csv.gz files) are read with LoadTabular; embeddings are read
// from a path with LoadEmbeddings. Status, Fetch and VerifyLocal report
// where a split is, make it local, and re-hash every local file.
//
// Small subsets of the real data are compiled into the package so that demos
// run offline; LoadEmbedded (or Load with Options.Embedded) returns them.
package data
