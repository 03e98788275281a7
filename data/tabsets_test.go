package data

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// isolate points the environment away from the user's cache and mirror.
func isolate(t *testing.T) {
	t.Helper()
	forgetVerified()
	t.Cleanup(forgetVerified)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "xdg"))
	t.Setenv("FLOWOOD_MIRROR", "")
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// svhnMAT returns an SVHN .mat file of n 32x32x3 images (column-major X)
// with labels 1..10, and the pixel value of image m, row i, column j,
// channel k.
func svhnMAT(t *testing.T, n int) ([]byte, func(m, i, j, k int) uint8) {
	t.Helper()
	val := func(m, i, j, k int) uint8 { return uint8(m*7 + i*3 + j*5 + k*11) }
	x := &MATVar{Name: "X", Class: "uint8", Dims: []int{32, 32, 3, n}, U8: make([]uint8, 32*32*3*n)}
	s := 0
	for m := range n {
		for k := range 3 {
			for j := range 32 {
				for i := range 32 {
					x.U8[s] = val(m, i, j, k)
					s++
				}
			}
		}
	}
	y := &MATVar{Name: "y", Class: "double", Dims: []int{n, 1}}
	for m := range n {
		y.F64 = append(y.F64, float64(m%10+1))
	}
	var buf bytes.Buffer
	if err := WriteMAT(&buf, []*MATVar{x, y}, true); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), val
}

// TestLoadSVHNFromMirror reads an SVHN file in its exact format from a
// mirror: Load rejects it, since it is not the published file (whose
// sha256 is registered), and the form's reader decodes it.
func TestLoadSVHNFromMirror(t *testing.T) {
	isolate(t)
	fastRetries(t, 1)
	mirror := t.TempDir()
	b, val := svhnMAT(t, 3)
	p := filepath.Join(mirror, "svhn", "test_32x32.mat")
	writeFile(t, p, b)
	_, err := Load("svhn", "test", Options{Mirror: mirror, NoDownload: true})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "want cdce80dfb2a2c4c6") {
		t.Fatalf("Load of a fixture in place of the published file: %v, want a checksum error naming it", err)
	}
	im, err := ReadSVHNFile(p, "test")
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || im.H != 32 || im.W != 32 || im.C != 3 {
		t.Fatalf("got %s %s %dx%dx%dx%d", im.Name, im.Split, im.N, im.H, im.W, im.C)
	}
	for m := range 3 {
		if got, want := im.Image(m)[(5*32+7)*3+2], val(m, 5, 7, 2); got != want {
			t.Errorf("image %d pixel (5,7,2) = %d, want %d", m, got, want)
		}
		if im.Labels[m] != uint8((m%10+1)%10) {
			t.Errorf("label %d = %d", m, im.Labels[m])
		}
	}
	// Not present: with its digest recorded, it is downloaded.
	_, err = Load("svhn", "train", Options{Mirror: mirror, CacheDir: t.TempDir(), BaseURL: "http://127.0.0.1:1/"})
	if err == nil || !strings.Contains(err.Error(), "downloading http://127.0.0.1:1/svhn/train_32x32.mat") {
		t.Errorf("svhn train: err = %v, want a failed download", err)
	}
	// A file with no digest recorded is never downloaded, even with a base URL.
	_, err = LoadTabular("hepmass", "train", Options{Mirror: mirror, CacheDir: t.TempDir(), BaseURL: "http://127.0.0.1:1/"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "never downloaded") {
		t.Errorf("hepmass train: err = %v, want ErrNotFound saying it is never downloaded", err)
	}
	// A corrupt file is an error naming it.
	writeFile(t, filepath.Join(mirror, "svhn", "train_32x32.mat"), b[:len(b)/2])
	_, err = Load("svhn", "train", Options{Mirror: mirror, NoDownload: true})
	if err == nil || !strings.Contains(err.Error(), "train_32x32.mat") {
		t.Errorf("truncated svhn: err = %v, want an error naming the file", err)
	}
	if _, err := LoadTabular("svhn", "test", Options{Mirror: mirror}); err == nil || !strings.Contains(err.Error(), "use Load") {
		t.Errorf("LoadTabular(svhn): err = %v", err)
	}
}

// hepmassCSV returns a HEPMASS csv in the UCI layout: a "# label,f0,...,
// f26,mass" header, then rows of label and 28 values.
func hepmassCSV(n int) []byte {
	var b strings.Builder
	b.WriteString("# label")
	for j := range 27 {
		fmt.Fprintf(&b, ",f%d", j)
	}
	b.WriteString(",mass\n")
	for i := range n {
		fmt.Fprintf(&b, "%d.000000", i%2)
		for j := range 28 {
			fmt.Fprintf(&b, ",%.6f", float64(i*j)/7-1)
		}
		b.WriteString("\n")
	}
	return []byte(b.String())
}

func TestLoadHEPMASS(t *testing.T) {
	isolate(t)
	mirror := t.TempDir()
	writeFile(t, filepath.Join(mirror, "hepmass", "1000_train.csv.gz"), gzipBytes(t, hepmassCSV(10)))
	writeFile(t, filepath.Join(mirror, "hepmass", "1000_test.csv.gz"), hepmassCSV(4)) // not compressed: accepted too
	tr, err := LoadTabular("hepmass", "train", Options{Mirror: mirror, NoDownload: true})
	if err != nil {
		t.Fatal(err)
	}
	if tr.N != 10 || tr.D != 28 || len(tr.Labels) != 10 || tr.Labels[1] != 1 || tr.Labels[2] != 0 || tr.Name != "hepmass" || tr.Split != "train" {
		t.Fatalf("train: %dx%d labels %v", tr.N, tr.D, tr.Labels)
	}
	if got, want := tr.Row(3)[2], float64(3*2)/7-1; got < want-1e-6 || got > want+1e-6 {
		t.Errorf("row 3 feature 2 = %v, want %v", got, want)
	}
	te, err := LoadTabular("hepmass", "test", Options{Mirror: mirror, NoDownload: true})
	if err != nil || te.N != 4 || te.D != 28 {
		t.Fatalf("test: %v %v", te, err)
	}
	// NaN in a row is an error naming file, line and column.
	bad := strings.Replace(string(hepmassCSV(3)), "-1.000000", "nan", 1)
	writeFile(t, filepath.Join(mirror, "hepmass", "1000_test.csv.gz"), gzipBytes(t, []byte(bad)))
	forgetVerified()
	_, err = LoadTabular("hepmass", "test", Options{Mirror: mirror, NoDownload: true})
	if err == nil || !strings.Contains(err.Error(), "1000_test.csv.gz") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("NaN: err = %v", err)
	}
	if _, err := Load("hepmass", "train", Options{Mirror: mirror}); err == nil || !strings.Contains(err.Error(), "LoadTabular") {
		t.Errorf("Load(hepmass): err = %v", err)
	}
}

func TestLoadMiniBooNERawFixture(t *testing.T) {
	isolate(t)
	mirror := t.TempDir()
	var b strings.Builder
	b.WriteString("  2  1\n")
	for i := range 3 {
		for j := range 50 {
			fmt.Fprintf(&b, " %.4E", float64(i+j)/3)
		}
		b.WriteString("\n")
	}
	writeFile(t, filepath.Join(mirror, "miniboone", "MiniBooNE_PID.txt"), []byte(b.String()))
	tb, err := LoadTabular("miniboone", "raw", Options{Mirror: mirror, NoDownload: true})
	if err != nil {
		t.Fatal(err)
	}
	if tb.N != 3 || tb.D != 50 || tb.Labels[0] != 1 || tb.Labels[1] != 1 || tb.Labels[2] != 0 {
		t.Errorf("raw: %dx%d labels %v", tb.N, tb.D, tb.Labels)
	}
}

func TestLoadMiniBooNEMAFChecksum(t *testing.T) {
	isolate(t)
	mirror := t.TempDir()
	var buf bytes.Buffer
	if err := WriteNPY(&buf, &Array{DType: "<f8", Shape: []int{2, 43}, F64: make([]float64, 86)}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mirror, "miniboone", "test.npy"), buf.Bytes())
	_, err := LoadTabular("miniboone", "test", Options{Mirror: mirror, NoDownload: true})
	if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "test.npy") {
		t.Errorf("err = %v, want ErrChecksum naming test.npy", err)
	}
	_, err = LoadTabular("miniboone", "val", Options{Mirror: mirror, NoDownload: true})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("val: err = %v, want ErrNotFound", err)
	}
}

// TestLoadMiniBooNEReal reads the mirror's MAF splits.
func TestLoadMiniBooNEReal(t *testing.T) {
	mirror := os.Getenv("FLOWOOD_MIRROR")
	if mirror == "" {
		t.Skip("FLOWOOD_MIRROR not set")
	}
	for split, n := range map[string]int{"val": 3284, "test": 3648} {
		tb, err := LoadTabular("miniboone", split, Options{Mirror: mirror, CacheDir: t.TempDir(), NoDownload: true})
		if err != nil {
			t.Fatal(err)
		}
		if tb.N != n || tb.D != 43 {
			t.Errorf("miniboone %s: %dx%d, want %dx43", split, tb.N, tb.D, n)
		}
		// Standardised: the means are near 0.
		var sum float64
		for i := range tb.N {
			sum += tb.Row(i)[0]
		}
		if m := sum / float64(tb.N); m < -0.5 || m > 0.5 {
			t.Errorf("miniboone %s: feature 0 mean %v, want about 0", split, m)
		}
		st := Status("miniboone", split, Options{Mirror: mirror, CacheDir: t.TempDir()}, true)
		if st.Err != nil || st.Where != PlaceMirror || shapeString(st.Shape) != fmt.Sprintf("(%d, 43)", n) {
			t.Errorf("Status(miniboone %s) = %+v", split, st)
		}
	}
}

// imageNetNPZ returns a downsampled-ImageNet batch of n images of side s.
func imageNetNPZ(t *testing.T, n, s int, labels []int64) []byte {
	t.Helper()
	d := 3 * s * s
	x := &Array{Name: "data", DType: "|u1", Shape: []int{n, d}, U8: make([]uint8, n*d)}
	for i := range x.U8 {
		x.U8[i] = uint8(i * 13)
	}
	y := &Array{Name: "labels", DType: "<i8", Shape: []int{len(labels)}, I64: labels}
	mean := &Array{Name: "mean", DType: "<f8", Shape: []int{d}, F64: make([]float64, d)}
	var buf bytes.Buffer
	if err := WriteNPZ(&buf, []*Array{x, y, mean}, true); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadImageNet64Batch(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "imagenet64", "val_data.npz")
	writeFile(t, p, imageNetNPZ(t, 3, 64, []int64{1, 1000, 17}))
	im, labels, err := ReadImageNet64Batch(p)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 3 || im.H != 64 || im.W != 64 || im.C != 3 || fmt.Sprint(labels) != "[0 999 16]" {
		t.Fatalf("got %dx%dx%dx%d labels %v", im.N, im.H, im.W, im.C, labels)
	}
	// Pixel (row 2, column 5, channel c) of image 1 comes from the CHW row.
	for c := range 3 {
		src := 1*12288 + c*4096 + 2*64 + 5
		if got, want := im.Image(1)[(2*64+5)*3+c], uint8(src*13); got != want {
			t.Errorf("channel %d: %d, want %d", c, got, want)
		}
	}
	all, err := Load("imagenet64", "val", Options{Mirror: dir, NoDownload: true})
	if err != nil || all.N != 3 || all.Name != "imagenet64" {
		t.Fatalf("Load: %v, %v", all, err)
	}
	st := Status("imagenet64", "val", Options{Mirror: dir, NoDownload: true}, true)
	if st.Where != PlaceMirror || fmt.Sprint(st.Shape) != "[3 64 64 3]" {
		t.Errorf("Status = %+v", st)
	}
	// The train split is not here, but its PNG tar form can be downloaded.
	if st := Status("imagenet64", "train", Options{Mirror: dir}, false); st.Where != "download" || st.Form != "PNG tar" {
		t.Errorf("train Status = %+v, want a download of the PNG tar", st)
	}
	if st := Status("imagenet64", "train", Options{Mirror: dir, NoDownload: true}, false); st.Where != WhereNotAvailable {
		t.Errorf("train Status without downloads = %+v, want not available", st)
	}
}

func TestReadImageNet64BatchCorrupt(t *testing.T) {
	dir := t.TempDir()
	npz := func(arrays ...*Array) []byte {
		var buf bytes.Buffer
		if err := WriteNPZ(&buf, arrays, false); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	u8 := func(shape ...int) *Array {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return &Array{Name: "data", DType: "|u1", Shape: shape, U8: make([]uint8, n)}
	}
	lab := func(v ...int64) *Array { return &Array{Name: "labels", DType: "<i8", Shape: []int{len(v)}, I64: v} }
	good := imageNetNPZ(t, 2, 8, []int64{1, 2})
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", good[:len(good)-30], "npz"},
		{"not zip", []byte("hello"), "not a valid npz"},
		{"no labels", npz(u8(2, 12)), `"labels"`},
		{"not square", npz(u8(2, 10), lab(1, 2)), "3*S*S"},
		{"float data", npz(&Array{Name: "data", DType: "<f4", Shape: []int{1, 3}, F32: make([]float32, 3)}, lab(1)), "uint8"},
		{"1-D data", npz(u8(12), lab(1)), "shape"},
		{"label count", npz(u8(2, 12), lab(1)), "want 2 labels"},
		{"label range", npz(u8(2, 12), lab(1, 1001)), "1..1000"},
		{"label zero", npz(u8(1, 12), lab(0)), "1..1000"},
		{"float labels", npz(u8(1, 12), &Array{Name: "labels", DType: "<f8", Shape: []int{1}, F64: []float64{1}}), "integer"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".npz")
		writeFile(t, p, c.b)
		_, _, err := ReadImageNet64Batch(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %s and %q", c.name, err, p, c.want)
		}
	}
}

func FuzzReadImageNet64Batch(f *testing.F) {
	var buf bytes.Buffer
	WriteNPZ(&buf, []*Array{{Name: "data", DType: "|u1", Shape: []int{1, 12}, U8: make([]uint8, 12)},
		{Name: "labels", DType: "<i8", Shape: []int{1}, I64: []int64{5}}}, false)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		arrays, err := ReadNPZFrom(bytes.NewReader(b), int64(len(b)), "fuzz.npz")
		if err != nil {
			return
		}
		im, labels, err := imageNetBatch(arrays)
		if err != nil {
			return
		}
		if err := im.Validate(); err != nil || len(labels) != im.N {
			t.Fatalf("invalid result: %v, %d labels for %d images", err, len(labels), im.N)
		}
	})
}

func TestLoadEmbeddings(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, arrays ...*Array) string {
		var buf bytes.Buffer
		if err := WriteNPZ(&buf, arrays, true); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, buf.Bytes())
		return p
	}
	p := write("emb.npz", &Array{Name: "embeddings", DType: "<f4", Shape: []int{5, 7}, F32: []float32{0: 1, 34: -2.5}},
		&Array{Name: "other", DType: "<f8", Shape: []int{1}, F64: []float64{3}})
	tb, err := LoadEmbeddings(p)
	if err != nil {
		t.Fatal(err)
	}
	if tb.N != 5 || tb.D != 7 || tb.X[0] != 1 || tb.X[34] != -2.5 || tb.Name != "embeddings" {
		t.Errorf("got %dx%d %v", tb.N, tb.D, tb.X)
	}
	for _, c := range []struct {
		p, want string
	}{
		{write("nokey.npz", &Array{Name: "x", DType: "<f4", Shape: []int{1, 1}, F32: []float32{1}}), `no array "embeddings"`},
		{write("nan.npz", &Array{Name: "embeddings", DType: "<f8", Shape: []int{1, 2}, F64: []float64{1, nan()}}), "NaN"},
		{write("3d.npz", &Array{Name: "embeddings", DType: "<f8", Shape: []int{1, 1, 1}, F64: []float64{1}}), "2 dimensions"},
		{filepath.Join(dir, "missing.npz"), "missing.npz"},
	} {
		if _, err := LoadEmbeddings(c.p); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), filepath.Base(c.p)) {
			t.Errorf("%s: err = %v, want %q", c.p, err, c.want)
		}
	}
	if _, err := LoadTabular("embeddings", "test", Options{}); err == nil || !strings.Contains(err.Error(), "LoadEmbeddings") {
		t.Errorf("LoadTabular(embeddings): err = %v", err)
	}
}

func nan() float64 { var z float64; return z / z }

func TestVerifyLocalAndFetch(t *testing.T) {
	fx := useFixtures(t)
	mirror := t.TempDir()
	fx.put(t, "mnist", filepath.Join(mirror, "mnist"))
	// A corrupt copy of a notmnist file in the mirror.
	writeFile(t, filepath.Join(mirror, "notmnist", "t10k-labels-idx1-ubyte.gz"), []byte("garbage"))
	cache := t.TempDir()
	checks := VerifyLocal(Options{Mirror: mirror, CacheDir: cache, DebianDir: t.TempDir()})
	var ok, bad int
	for _, c := range checks {
		if c.Err != nil {
			bad++
			if !errors.Is(c.Err, ErrChecksum) || c.Name != "notmnist" || c.Place != PlaceMirror {
				t.Errorf("unexpected failure %+v", c)
			}
		} else {
			ok++
		}
	}
	if ok != 4 || bad != 1 {
		t.Errorf("VerifyLocal: %d ok, %d bad, want 4 and 1: %+v", ok, bad, checks)
	}

	srv := fx.serve(t)
	sts, err := Fetch("notmnist", Options{CacheDir: cache, BaseURL: srv.URL + "/", DebianDir: t.TempDir()})
	if err != nil || len(sts) != 1 || sts[0].Where != WhereDownload {
		t.Fatalf("Fetch = %+v, %v", sts, err)
	}
	sts, err = Fetch("notmnist", Options{CacheDir: cache, NoDownload: true})
	if err != nil || sts[0].Where != PlaceCache {
		t.Fatalf("second Fetch = %+v, %v", sts, err)
	}
	if st := Status("mnist", "test", Options{Mirror: mirror, CacheDir: t.TempDir()}, true); st.Where != PlaceMirror || st.Shape[0] != fx.images["mnist/test"].N {
		t.Errorf("Status(mnist test) = %+v", st)
	}
	if st := Status("mnist", "test", Options{CacheDir: t.TempDir(), BaseURL: srv.URL}, false); st.Where != WhereDownload {
		t.Errorf("Status without local files = %+v, want download", st)
	}
	if _, err := Fetch("nosuch", Options{}); !errors.Is(err, ErrUnknownDataset) {
		t.Errorf("Fetch(nosuch): %v", err)
	}
}
