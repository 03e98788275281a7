package data

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// ArchiveOptions controls how ReadImageArchive and ReadImageZip read a
// collection of images.
type ArchiveOptions struct {
	// H and W, if positive, are the required image size: an image of any
	// other size is an error. When zero, every image must have the size of
	// the first.
	H, W int
	// Dir, if not empty, restricts reading to the images under this
	// slash-separated folder of the archive, such as "test".
	Dir string
	// Label returns the class name of the image with the given entry name
	// (slash-separated, relative to the archive root), or ok = false to
	// make the entry an error. Nil means the name of the folder that holds
	// the image.
	Label func(entry string) (class string, ok bool)
	// Classes, if not nil, fixes the class names (label i is Classes[i]);
	// an image of another class is an error. Nil means the sorted names of
	// the classes found.
	Classes []string
	// NoLabels makes the result have no labels.
	NoLabels bool
	// Select, if not nil, reads only the images whose entry name (as for
	// Label) it accepts; the others are skipped without being decoded.
	Select func(entry string) bool
	// Convert, if not nil, transforms each decoded image (one image of
	// the archive's size, H and W) as it is read, such as a crop and a
	// resize, so that a large archive never has to be held at full size;
	// it must return images of one size. It is called from several
	// goroutines at once (images are decoded in parallel).
	Convert func(*Images) (*Images, error)
}

// maxDecodedRatio bounds the decoded pixel bytes of an archive to this many
// times the archive's size on disk. Real image collections decode to 3 to 20
// times their size; a file that claims more is rejected before decoding.
const maxDecodedRatio = 1024

// maxEntryRatio bounds an archive entry's size to this many times its
// compressed size (deflate cannot do better than about 1032) plus a small
// allowance, and maxEntryBytes bounds it absolutely.
const (
	maxEntryRatio = 1100
	maxEntryBytes = 64 << 20
)

// isImageName reports whether an entry name has an extension of an image
// format that is read: .jpg, .jpeg or .png, in any case.
func isImageName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// checkEntryName rejects archive entry names that are absolute, contain a
// backslash or a ".." element, or are otherwise not local paths.
func checkEntryName(name string) error {
	if name == "" {
		return errors.New("entry with an empty name")
	}
	if strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || !filepath.IsLocal(strings.TrimSuffix(name, "/")) {
		return fmt.Errorf("entry %q: name is not a path inside the archive", name)
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return fmt.Errorf("entry %q: name escapes the archive folder", name)
	}
	return nil
}

// imageCollector checks images one entry at a time, in the order they
// are read, and decodes them on a pool of goroutines (one per core):
// decoding (JPEG above all) is most of the time of reading an archive.
// Errors are reported for the first failing entry in reading order, as a
// sequential reader would.
type imageCollector struct {
	opts   ArchiveOptions
	budget int64 // pixel bytes that may still be decoded
	h, w   int
	items  []*decodedImage

	jobs chan decodeJob // nil until the first image
	wg   sync.WaitGroup
}

// decodedImage is one decoded entry. pix, err and (with Convert) the
// converted size are set by a decoding goroutine.
type decodedImage struct {
	entry, class string
	pix          []uint8
	oh, ow, oc   int
	err          error
}

// decodeJob is the encoded data of one entry for the pool.
type decodeJob struct {
	it     *decodedImage
	b      []byte
	format string
}

func newCollector(opts ArchiveOptions, archiveSize int64) *imageCollector {
	return &imageCollector{opts: opts, budget: maxDecodedRatio * max(archiveSize, 0), h: opts.H, w: opts.W}
}

// wants reports whether entry name (already checked) is an image to read.
func (c *imageCollector) wants(name string) bool {
	if strings.HasSuffix(name, "/") || !isImageName(name) {
		return false
	}
	if c.opts.Dir != "" && !strings.HasPrefix(name, strings.Trim(c.opts.Dir, "/")+"/") {
		return false
	}
	return c.opts.Select == nil || c.opts.Select(name)
}

// add checks the header and class of the image data b of entry name and
// queues it for decoding. An error here comes after any decoding error
// of an earlier entry (fail).
func (c *imageCollector) add(name string, b []byte) error {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return c.fail(fmt.Errorf("entry %s: %w", name, err))
	}
	if format != "jpeg" && format != "png" {
		return c.fail(fmt.Errorf("entry %s: %s image, want JPEG or PNG", name, format))
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return c.fail(fmt.Errorf("entry %s: image is %dx%d", name, cfg.Width, cfg.Height))
	}
	if c.h == 0 {
		c.h, c.w = cfg.Height, cfg.Width
	}
	if cfg.Height != c.h || cfg.Width != c.w {
		return c.fail(fmt.Errorf("entry %s: image is %dx%d (height x width), want %dx%d", name, cfg.Height, cfg.Width, c.h, c.w))
	}
	need := int64(c.h) * int64(c.w) * 3
	if need > c.budget {
		return c.fail(fmt.Errorf("entry %s: decoding it would exceed %d times the archive size", name, maxDecodedRatio))
	}
	c.budget -= need
	class := ""
	if !c.opts.NoLabels {
		var ok bool
		if c.opts.Label != nil {
			class, ok = c.opts.Label(name)
		} else {
			class, ok = path.Base(path.Dir(name)), true
		}
		if !ok {
			return c.fail(fmt.Errorf("entry %s: no class for this image", name))
		}
	}
	it := &decodedImage{entry: name, class: class}
	c.items = append(c.items, it)
	if c.jobs == nil {
		n := runtime.GOMAXPROCS(0)
		c.jobs = make(chan decodeJob, 2*n)
		for range n {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				for j := range c.jobs {
					c.decode(j)
				}
			}()
		}
	}
	c.jobs <- decodeJob{it, b, format}
	return nil
}

// decode decodes one queued image (on a pool goroutine).
func (c *imageCollector) decode(j decodeJob) {
	it := j.it
	var img image.Image
	var err error
	if j.format == "jpeg" {
		img, err = jpeg.Decode(bytes.NewReader(j.b))
	} else {
		img, err = png.Decode(bytes.NewReader(j.b))
	}
	if err != nil {
		it.err = fmt.Errorf("entry %s: %w", it.entry, err)
		return
	}
	if r := img.Bounds(); r.Dx() != c.w || r.Dy() != c.h {
		it.err = fmt.Errorf("entry %s: decoded image is %dx%d, header says %dx%d", it.entry, r.Dy(), r.Dx(), c.h, c.w)
		return
	}
	it.pix = rgbPixels(img)
	if c.opts.Convert != nil {
		one, err := c.opts.Convert(&Images{N: 1, H: c.h, W: c.w, C: 3, Pix: it.pix})
		if err != nil {
			it.err, it.pix = fmt.Errorf("entry %s: %w", it.entry, err), nil
			return
		}
		if one.N != 1 {
			it.err, it.pix = fmt.Errorf("entry %s: converted to %d images, want one", it.entry, one.N), nil
			return
		}
		it.oh, it.ow, it.oc, it.pix = one.H, one.W, one.C, one.Pix
	}
}

// wait lets the pool finish the queued images and stops it.
func (c *imageCollector) wait() {
	if c.jobs != nil {
		close(c.jobs)
		c.wg.Wait()
		c.jobs = nil
	}
}

// fail returns the first decoding error of the entries queued so far, in
// reading order, or else err.
func (c *imageCollector) fail(err error) error {
	c.wait()
	for _, it := range c.items {
		if it.err != nil {
			return it.err
		}
	}
	return err
}

// result assembles the images in entry name order and assigns labels.
func (c *imageCollector) result() (*Images, []string, error) {
	if err := c.fail(nil); err != nil {
		return nil, nil, err
	}
	im := &Images{H: c.h, W: c.w, C: 3}
	if c.opts.Convert != nil && len(c.items) > 0 {
		first := c.items[0] // in reading order
		im.H, im.W, im.C = first.oh, first.ow, first.oc
	}
	for _, it := range c.items {
		if c.opts.Convert != nil && (it.oh != im.H || it.ow != im.W || it.oc != im.C) {
			return nil, nil, fmt.Errorf("entry %s: converted to an image of %dx%dx%d, want one of the size of the others (%dx%dx%d)", it.entry, it.oh, it.ow, it.oc, im.H, im.W, im.C)
		}
	}
	if len(c.items) == 0 {
		what := "no JPEG or PNG images"
		if c.opts.Dir != "" {
			what += " under " + c.opts.Dir + "/"
		}
		return nil, nil, errors.New(what)
	}
	slices.SortFunc(c.items, func(a, b *decodedImage) int { return strings.Compare(a.entry, b.entry) })
	for i := 1; i < len(c.items); i++ {
		if c.items[i].entry == c.items[i-1].entry {
			return nil, nil, fmt.Errorf("entry %s appears twice", c.items[i].entry)
		}
	}
	im.N = len(c.items)
	d := im.Dim()
	im.Pix = make([]uint8, 0, im.N*d)
	for i := range c.items {
		im.Pix = append(im.Pix, c.items[i].pix...)
		c.items[i].pix = nil // let it go: a large archive is not held twice
	}
	if c.opts.NoLabels {
		return im, nil, nil
	}
	classes := c.opts.Classes
	if classes == nil {
		for _, it := range c.items {
			classes = append(classes, it.class)
		}
		slices.Sort(classes)
		classes = slices.Compact(classes)
	}
	if len(classes) > 256 {
		return nil, nil, fmt.Errorf("%d classes, at most 256 can be labelled", len(classes))
	}
	ids := make(map[string]uint8, len(classes))
	for i, cl := range classes {
		ids[cl] = uint8(i)
	}
	im.Labels = make([]uint8, im.N)
	for i, it := range c.items {
		id, ok := ids[it.class]
		if !ok {
			return nil, nil, fmt.Errorf("entry %s: class %q is not one of the %d known classes", it.entry, it.class, len(classes))
		}
		im.Labels[i] = id
	}
	return im, classes, nil
}

// rgbPixels returns the pixels of img as HWC RGB bytes; alpha is dropped.
func rgbPixels(img image.Image) []uint8 {
	r := img.Bounds()
	w, h := r.Dx(), r.Dy()
	out := make([]uint8, 0, w*h*3)
	switch m := img.(type) {
	case *image.YCbCr:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				yi, ci := m.YOffset(x, y), m.COffset(x, y)
				cr, cg, cb := color.YCbCrToRGB(m.Y[yi], m.Cb[ci], m.Cr[ci])
				out = append(out, cr, cg, cb)
			}
		}
	case *image.Gray:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				v := m.Pix[m.PixOffset(x, y)]
				out = append(out, v, v, v)
			}
		}
	case *image.NRGBA:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				o := m.PixOffset(x, y)
				out = append(out, m.Pix[o], m.Pix[o+1], m.Pix[o+2])
			}
		}
	default:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				out = append(out, c.R, c.G, c.B)
			}
		}
	}
	return out
}

// ReadImageZip reads the JPEG and PNG images of the zip archive r of the
// given size, in entry name order, with labels from their folder names (see
// ArchiveOptions), and returns them as RGB images with the class names of
// the labels. Entries that are not images are skipped; an entry whose name
// is absolute or contains "..", an image that does not decode or has the
// wrong size, and an archive whose images would decode to more than 1024
// times its size are errors naming the entry.
func ReadImageZip(r io.ReaderAt, size int64, opts ArchiveOptions) (*Images, []string, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, nil, err
	}
	c := newCollector(opts, size)
	defer c.wait()
	for _, f := range zr.File {
		if err := checkEntryName(f.Name); err != nil {
			return nil, nil, err
		}
		if !c.wants(f.Name) {
			continue
		}
		if f.UncompressedSize64 > maxEntryBytes || f.UncompressedSize64 > maxEntryRatio*f.CompressedSize64+4096 {
			return nil, nil, fmt.Errorf("entry %s: claims %d bytes, %d compressed", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
		b, err := readZipEntry(f)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %s: %w", f.Name, err)
		}
		if err := c.add(f.Name, b); err != nil {
			return nil, nil, err
		}
	}
	return c.result()
}

// readZipEntry reads a zip entry of checked size.
func readZipEntry(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	// Allocate no more than 1 MiB up front: the declared size may lie.
	buf := bytes.NewBuffer(make([]byte, 0, min(f.UncompressedSize64, 1<<20)))
	if _, err := io.Copy(buf, io.LimitReader(rc, int64(f.UncompressedSize64)+1)); err != nil {
		return nil, err
	}
	if uint64(buf.Len()) != f.UncompressedSize64 {
		return nil, fmt.Errorf("holds %d bytes, header says %d", buf.Len(), f.UncompressedSize64)
	}
	return buf.Bytes(), nil
}

// ReadImageTar reads the JPEG and PNG images of the tar stream r as
// ReadImageZip does. size is the size of the stream as stored (compressed,
// if the caller decompresses it), which bounds the decoded images.
func ReadImageTar(r io.Reader, size int64, opts ArchiveOptions) (*Images, []string, error) {
	tr := tar.NewReader(r)
	c := newCollector(opts, size)
	defer c.wait()
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if err := checkEntryName(hdr.Name); err != nil {
			return nil, nil, err
		}
		if hdr.Typeflag != tar.TypeReg || !c.wants(hdr.Name) {
			continue
		}
		if hdr.Size > maxEntryBytes || hdr.Size > maxEntryRatio*size {
			return nil, nil, fmt.Errorf("entry %s: claims %d bytes", hdr.Name, hdr.Size)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %s: %w", hdr.Name, err)
		}
		if err := c.add(hdr.Name, b); err != nil {
			return nil, nil, err
		}
	}
	return c.result()
}

// ReadImageArchive reads the JPEG and PNG images of a zip archive (.zip),
// a tar archive (.tar, or gzip-compressed: .tar.gz, .tgz) or a folder, as
// ReadImageZip does; in a folder, entry names are the slash-separated paths
// relative to it, and symbolic links are not followed. Errors name the
// file. The result's Source is path.
func ReadImageArchive(path string, opts ArchiveOptions) (*Images, []string, error) {
	im, classes, err := readImageArchive(path, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	im.Source = path
	return im, classes, nil
}

func readImageArchive(p string, opts ArchiveOptions) (*Images, []string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return readImageFolder(p, opts)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	lower := strings.ToLower(p)
	switch {
	case strings.HasSuffix(lower, ".zip"):
		return ReadImageZip(f, fi.Size(), opts)
	case strings.HasSuffix(lower, ".tar"), strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		r, _, release, err := maybeGunzip(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return nil, nil, err
		}
		defer release()
		return ReadImageTar(r, fi.Size(), opts)
	}
	return nil, nil, errors.New("not a folder, .zip, .tar, .tar.gz or .tgz")
}

// readImageFolder reads the images under folder root.
func readImageFolder(root string, opts ArchiveOptions) (*Images, []string, error) {
	var names []string
	var total int64
	fsys := os.DirFS(root)
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || !isImageName(name) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		total += fi.Size()
		names = append(names, name)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	c := newCollector(opts, total)
	defer c.wait()
	for _, name := range names {
		if !c.wants(name) {
			continue
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, nil, err
		}
		if err := c.add(name, b); err != nil {
			return nil, nil, err
		}
	}
	return c.result()
}
