package data

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// CIFAR-10 binary batches (data_batch_1.bin ... data_batch_5.bin and
// test_batch.bin in cifar-10-binary.tar.gz) are sequences of records of one
// label byte (0-9) followed by a 32x32 colour image as 1024 red, 1024 green
// and 1024 blue values, each plane in row-major order.
const (
	cifarSide    = 32
	cifarPixels  = cifarSide * cifarSide * 3
	cifarRecord  = 1 + cifarPixels
	cifarClasses = 10
	// maxCIFARBatchBytes bounds a batch read (a canonical batch is
	// 10000 records, 30,730,000 bytes), so that a corrupt stream is an
	// error rather than an unbounded read.
	maxCIFARBatchBytes = 100000 * cifarRecord
)

// CIFAR10Classes are the CIFAR-10 class names in label order.
var CIFAR10Classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// ReadCIFARBatch decodes a CIFAR-10 binary batch from r into 32x32x3 images
// (converted from the file's planar CHW layout to HWC) with their labels.
// It rejects an empty stream, one whose length is not a whole number of
// 3073-byte records, one longer than 100,000 records, and labels above 9.
// Memory grows with the data actually read, whatever its claimed size.
func ReadCIFARBatch(r io.Reader) (*Images, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxCIFARBatchBytes+1))
	if err != nil {
		return nil, err
	}
	switch {
	case len(raw) == 0:
		return nil, errors.New("empty CIFAR-10 batch")
	case len(raw) > maxCIFARBatchBytes:
		return nil, fmt.Errorf("CIFAR-10 batch longer than %d records", maxCIFARBatchBytes/cifarRecord)
	case len(raw)%cifarRecord != 0:
		return nil, fmt.Errorf("CIFAR-10 batch of %d bytes is not a whole number of %d-byte records (%d records and %d bytes over)",
			len(raw), cifarRecord, len(raw)/cifarRecord, len(raw)%cifarRecord)
	}
	n := len(raw) / cifarRecord
	im := &Images{N: n, H: cifarSide, W: cifarSide, C: 3, Pix: make([]uint8, n*cifarPixels), Labels: make([]uint8, n)}
	const plane = cifarSide * cifarSide
	for i := range n {
		rec := raw[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] >= cifarClasses {
			return nil, fmt.Errorf("record %d: label %d, want 0 to %d", i, rec[0], cifarClasses-1)
		}
		im.Labels[i] = rec[0]
		dst := im.Pix[i*cifarPixels : (i+1)*cifarPixels]
		for p := range plane {
			dst[3*p] = rec[1+p]
			dst[3*p+1] = rec[1+plane+p]
			dst[3*p+2] = rec[1+2*plane+p]
		}
	}
	return im, nil
}

// cifarBatches returns the batch file names of a CIFAR-10 split, in order.
func cifarBatches(split string) []string {
	if split == "test" {
		return []string{"test_batch.bin"}
	}
	return []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
}

// ReadCIFARTarball reads the batches of split ("train": data_batch_1.bin to
// data_batch_5.bin, in order; "test": test_batch.bin) from the CIFAR-10
// binary archive cifar-10-binary.tar.gz (gzip-compressed or not) at path.
// Each batch must hold 10,000 images. Errors name the file and the entry.
func ReadCIFARTarball(path, split string) (*Images, error) {
	im, err := readCIFARTarball(path, split)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	im.Source = path
	return im, nil
}

func readCIFARTarball(p, split string) (*Images, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, release, err := maybeGunzip(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, err
	}
	defer release()
	want := cifarBatches(split)
	got := map[string]*Images{}
	tr := tar.NewReader(r)
	for len(got) < len(want) {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := checkEntryName(hdr.Name); err != nil {
			return nil, err
		}
		base := path.Base(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || got[base] != nil || !contains(want, base) {
			continue
		}
		im, err := ReadCIFARBatch(tr)
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", hdr.Name, err)
		}
		if im.N != 10000 {
			return nil, fmt.Errorf("entry %s: %d images, want 10000", hdr.Name, im.N)
		}
		got[base] = im
	}
	out := &Images{H: cifarSide, W: cifarSide, C: 3}
	for _, b := range want {
		im := got[b]
		if im == nil {
			return nil, fmt.Errorf("no %s in the archive", b)
		}
		out.N += im.N
		out.Pix = append(out.Pix, im.Pix...)
		out.Labels = append(out.Labels, im.Labels...)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
