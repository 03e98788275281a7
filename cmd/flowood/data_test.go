package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
)

// dataEnv isolates a test from the user's cache and mirror.
func dataEnv(t *testing.T) string {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "xdg"))
	t.Setenv("FLOWOOD_MIRROR", "")
	return t.TempDir()
}

func put(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// svhnFixture returns an SVHN .mat file of n images.
func svhnFixture(t *testing.T, n int) []byte {
	x := &data.MATVar{Name: "X", Class: "uint8", Dims: []int{32, 32, 3, n}, U8: make([]uint8, 32*32*3*n)}
	for i := range x.U8 {
		x.U8[i] = uint8(i)
	}
	y := &data.MATVar{Name: "y", Class: "uint8", Dims: []int{n, 1}}
	for i := range n {
		y.U8 = append(y.U8, uint8(i%10+1))
	}
	var buf bytes.Buffer
	if err := data.WriteMAT(&buf, []*data.MATVar{x, y}, false); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hepmassFixture returns a gzip-compressed HEPMASS csv of n rows.
func hepmassFixture(t *testing.T, n int) []byte {
	var s strings.Builder
	s.WriteString("# label")
	for j := range 27 {
		fmt.Fprintf(&s, ",f%d", j)
	}
	s.WriteString(",mass\n")
	for i := range n {
		fmt.Fprintf(&s, "%d", i%2)
		for j := range 28 {
			fmt.Fprintf(&s, ",%d.5", i+j)
		}
		s.WriteString("\n")
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s.String()))
	zw.Close()
	return buf.Bytes()
}

// imageNetFixture returns a downsampled-ImageNet npz batch of n 64x64
// images.
func imageNetFixture(t *testing.T, n int) []byte {
	d := 3 * 64 * 64
	x := &data.Array{Name: "data", DType: "|u1", Shape: []int{n, d}, U8: make([]uint8, n*d)}
	for i := range x.U8 {
		x.U8[i] = uint8(i * 7)
	}
	y := &data.Array{Name: "labels", DType: "<i8", Shape: []int{n}, I64: make([]int64, n)}
	for i := range y.I64 {
		y.I64[i] = int64(i + 1)
	}
	var buf bytes.Buffer
	if err := data.WriteNPZ(&buf, []*data.Array{x, y}, false); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fixtureMirror writes imagenet64 (val) and hepmass fixtures, files in
// their exact formats whose digests are not registered, into a new mirror.
func fixtureMirror(t *testing.T) string {
	m := t.TempDir()
	put(t, filepath.Join(m, "imagenet64", "val_data.npz"), imageNetFixture(t, 3))
	put(t, filepath.Join(m, "hepmass", "1000_train.csv.gz"), hepmassFixture(t, 5))
	put(t, filepath.Join(m, "hepmass", "1000_test.csv.gz"), hepmassFixture(t, 2))
	return m
}

// row matches a line of the data list table.
func hasRow(out string, fields ...string) bool {
	re := regexp.MustCompile(`(?m)^` + strings.Join(fields, `\s+`) + `(\s|$)`)
	return re.MatchString(out)
}

func TestDataList(t *testing.T) {
	cache := dataEnv(t)
	m := fixtureMirror(t)
	out, _, err := runCLI(t, "data", "list", "--mirror", m, "--cache", cache, "--no-download")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]string{
		{"imagenet64", "images", "val", "3x64x64x3", "mirror", "npz batch"},
		{"imagenet64", "images", "train", "-", "not available"},
		{"hepmass", "tabular", "train", "5x28", "mirror"},
		{"hepmass", "tabular", "test", "2x28", "mirror"},
		{"mnist", "images", "test", "-", "not available"},
		{"svhn", "images", "test", "-", "not available"},
		{"embeddings", "tabular", "-", "-", "by path"},
	} {
		if !hasRow(out, row...) {
			t.Errorf("list lacks row %v:\n%s", row, out)
		}
	}
	// Without --no-download, registered downloads show as such.
	out, _, err = runCLI(t, "data", "list", "--quick", "--mirror", m, "--cache", cache, "mnist", "imagenet64", "svhn")
	if err != nil {
		t.Fatal(err)
	}
	if !hasRow(out, "mnist", "images", "test", "-", "download") || !hasRow(out, "imagenet64", "images", "val", "-", "mirror") ||
		!hasRow(out, "imagenet64", "images", "train", "-", "download", "PNG tar") || !hasRow(out, "svhn", "images", "test", "-", "download") {
		t.Errorf("quick list:\n%s", out)
	}
	// A file that cannot be read makes the list fail, naming it.
	put(t, filepath.Join(m, "imagenet64", "val_data.npz"), []byte("PK truncated"))
	out, errOut, err := runCLI(t, "data", "list", "--mirror", m, "--cache", cache, "--no-download", "imagenet64")
	if err == nil || !hasRow(out, "imagenet64", "images", "val", "-", "error") || !strings.Contains(errOut, "val_data.npz") {
		t.Errorf("corrupt imagenet64: err %v\n%s\n%s", err, out, errOut)
	}
	// So does a file in an exact format that is not the published one:
	// SVHN's digests are registered.
	put(t, filepath.Join(m, "svhn", "test_32x32.mat"), svhnFixture(t, 3))
	out, errOut, err = runCLI(t, "data", "list", "--mirror", m, "--cache", cache, "--no-download", "svhn")
	if err == nil || !hasRow(out, "svhn", "images", "test", "-", "error") || !strings.Contains(errOut, "checksum mismatch for "+filepath.Join(m, "svhn", "test_32x32.mat")) {
		t.Errorf("svhn fixture: err %v\n%s\n%s", err, out, errOut)
	}
	if _, _, err := runCLI(t, "data", "list", "nosuch"); err == nil || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("unknown dataset: %v", err)
	}
}

func TestDataVerify(t *testing.T) {
	cache := dataEnv(t)
	m := fixtureMirror(t)
	out, _, err := runCLI(t, "data", "verify", "--mirror", m, "--cache", cache)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "OK  imagenet64 val "+filepath.Join(m, "imagenet64", "val_data.npz")+" (no recorded sha256") ||
		!strings.Contains(out, "3 file(s) checked, 0 bad") {
		t.Errorf("verify output:\n%s", out)
	}
	put(t, filepath.Join(cache, "mnist", "t10k-labels-idx1-ubyte.gz"), []byte("garbage"))
	out, _, err = runCLI(t, "data", "verify", "--mirror", m, "--cache", cache)
	if err == nil || !strings.Contains(err.Error(), "1 of 4") {
		t.Errorf("err = %v, want a failure for 1 of 4 files", err)
	}
	if !strings.Contains(out, "BAD mnist test "+filepath.Join(cache, "mnist", "t10k-labels-idx1-ubyte.gz")+": checksum mismatch") {
		t.Errorf("verify output:\n%s", out)
	}
	if _, _, err := runCLI(t, "data", "verify", "extra"); err == nil {
		t.Error("verify with an argument: no error")
	}
}

func TestDataFetch(t *testing.T) {
	cache := dataEnv(t)
	m := fixtureMirror(t)
	out, _, err := runCLI(t, "data", "fetch", "--mirror", m, "--cache", cache, "hepmass")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"hepmass train: mirror (UCI csv.gz) " + filepath.Join(m, "hepmass", "1000_train.csv.gz"), "hepmass test: mirror"} {
		if !strings.Contains(out, want) {
			t.Errorf("fetch output lacks %q:\n%s", want, out)
		}
	}
	// imagenet64 val is in the mirror; train would be downloaded.
	out, _, err = runCLI(t, "data", "fetch", "--mirror", m, "--cache", cache, "--no-download", "imagenet64")
	if err == nil || !strings.Contains(err.Error(), "train_64x64.tar is not in") || !strings.Contains(err.Error(), "downloading is disabled") {
		t.Errorf("fetch imagenet64: %v\n%s", err, out)
	}
	// A file whose digest is not recorded is never downloaded.
	_, _, err = runCLI(t, "data", "fetch", "--mirror", m, "--cache", cache, "miniboone")
	if err == nil || !strings.Contains(err.Error(), "never downloaded") && !strings.Contains(err.Error(), "no download location") {
		t.Errorf("fetch miniboone: %v", err)
	}
	_, _, err = runCLI(t, "data", "fetch", "--mirror", m, "--cache", cache, "--no-download", "mnist")
	if err == nil || !strings.Contains(err.Error(), "downloading is disabled") {
		t.Errorf("fetch mnist: %v", err)
	}
	if _, _, err := runCLI(t, "data", "fetch"); err == nil || !strings.Contains(err.Error(), "at least one") {
		t.Errorf("fetch without names: %v", err)
	}
	if _, _, err := runCLI(t, "data", "fetch", "embeddings"); err == nil || !strings.Contains(err.Error(), "LoadEmbeddings") {
		t.Errorf("fetch embeddings: %v", err)
	}
}

func TestDataShow(t *testing.T) {
	cache := dataEnv(t)
	m := fixtureMirror(t)
	p := filepath.Join(t.TempDir(), "grid.png")
	out, _, err := runCLI(t, "data", "show", "imagenet64", "--split", "val", "--mirror", m, "--cache", cache, "--n", "2", "--out", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "imagenet64 val: 3 images of 64x64x3; wrote the first 2 to "+p) {
		t.Errorf("show output: %s", out)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 2*64+3*2 || cfg.Height != 64+2*2 {
		t.Errorf("PNG %dx%d, %v", cfg.Width, cfg.Height, err)
	}
	out, _, err = runCLI(t, "data", "show", "hepmass", "--split", "train", "--mirror", m, "--cache", cache)
	if err != nil {
		t.Fatal(err)
	}
	// Feature 0 of the 5 rows is 0.5 .. 4.5: mean 2.5, std sqrt(2).
	if !strings.Contains(out, "hepmass train: 5 rows x 28 features, labels {0: 3, 1: 2}") ||
		!regexp.MustCompile(`(?m)^\s*0\s+2\.5\s+1\.414\s+0\.5\s+4\.5\s*$`).MatchString(out) {
		t.Errorf("show hepmass:\n%s", out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"data", "show"}, "exactly one dataset"},
		{[]string{"data", "show", "svhn", "--n", "0"}, "--n 0"},
		{[]string{"data", "show", "svhn", "--split", "val", "--mirror", m}, `no "val" split`},
		{[]string{"data", "show", "svhn", "--mirror", m, "--cache", cache, "--no-download"}, "test_32x32.mat"},
		{[]string{"data", "show", "embeddings"}, "LoadEmbeddings"},
		{[]string{"data"}, "want a subcommand"},
		{[]string{"data", "frob"}, `unknown subcommand "frob"`},
	} {
		if _, _, err := runCLI(t, c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}

// TestDataRealMirror checks the commands on the mirror named by
// FLOWOOD_MIRROR.
func TestDataRealMirror(t *testing.T) {
	mirror := os.Getenv("FLOWOOD_MIRROR")
	if mirror == "" {
		t.Skip("FLOWOOD_MIRROR not set")
	}
	if testing.Short() {
		t.Skip("reads every image of the mirror")
	}
	cache := t.TempDir()
	out, errOut, err := runCLI(t, "data", "list", "--mirror", mirror, "--cache", cache, "--no-download")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	for _, row := range [][]string{
		{"mnist", "images", "train", "60000x28x28x1", "mirror"},
		{"mnist", "images", "test", "10000x28x28x1", "mirror"},
		{"fashionmnist", "images", "train", "60000x28x28x1", "mirror"},
		{"notmnist", "images", "test", "10000x28x28x1", "mirror"},
		{"cifar10", "images", "train", "50000x32x32x3", "mirror"},
		{"cifar10", "images", "test", "10000x32x32x3", "mirror"},
		{"celeba", "images", "train", "10000x109x89x3", "mirror"},
		{"tinyimagenet", "images", "val", "10100x64x64x3", "mirror"},
		{"miniboone", "tabular", "val", "3284x43", "mirror"},
		{"miniboone", "tabular", "test", "3648x43", "mirror"},
	} {
		if !hasRow(out, row...) {
			t.Errorf("list lacks row %v:\n%s", row, out)
		}
	}
	out, _, err = runCLI(t, "data", "verify", "--mirror", mirror, "--cache", cache)
	if err != nil || !strings.Contains(out, "16 file(s) checked, 0 bad") {
		t.Errorf("verify: %v\n%s", err, out)
	}
	p := filepath.Join(t.TempDir(), "cifar.png")
	if _, _, err := runCLI(t, "data", "show", "cifar10", "--mirror", mirror, "--cache", cache, "--n", "16", "--out", p); err != nil {
		t.Error(err)
	}
	out, _, err = runCLI(t, "data", "show", "miniboone", "--mirror", mirror, "--cache", cache)
	if err != nil || !strings.Contains(out, "miniboone test: 3648 rows x 43 features") {
		t.Errorf("show miniboone: %v\n%s", err, out)
	}
}
