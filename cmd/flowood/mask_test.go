package main

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowood/flowood/experiment"
	"github.com/flowood/flowood/model/realnvp"
)

// TestMaskShow draws the cycle mask on 4x4 images, one PNG pixel per
// mask pixel, and reads the panels back against Fig. 12 drawn by hand.
func TestMaskShow(t *testing.T) {
	out := filepath.Join(t.TempDir(), "masks.png")
	stdout, stderr, err := runCLI(t, "mask", "show", "--mask", "cycle", "--height", "4", "--width", "4", "--couplings", "4", "--pixel", "1", "--out", out)
	if err != nil {
		t.Fatalf("mask show: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, out) {
		t.Errorf("stdout %q does not name %s", stdout, out)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// C conditioning, T transformed, . untouched; quadrants clockwise
	// from the top left, coupling k maps quadrant k to k+1.
	want := [][]string{
		{"CCTT", "CCTT", "....", "...."},
		{"..CC", "..CC", "..TT", "..TT"},
		{"....", "....", "TTCC", "TTCC"},
		{"TT..", "TT..", "CC..", "CC.."},
	}
	colours := map[byte]color.NRGBA{'C': maskCondColor, 'T': maskTransColor, '.': maskUntouchedColor}
	const gap = 2 // max(2, pixel)
	if b := img.Bounds(); b.Dx() != 4*(4+gap)+gap || b.Dy() != 4+2*gap {
		t.Fatalf("image %v", b)
	}
	for k, rows := range want {
		for i, row := range rows {
			for j := range row {
				got := color.NRGBAModel.Convert(img.At(gap+k*(4+gap)+j, gap+i)).(color.NRGBA)
				if got != colours[row[j]] {
					t.Errorf("coupling %d pixel (%d,%d): colour %v, want %c", k, i, j, got, row[j])
				}
			}
		}
	}
	// A bitmap of the wrong size is an error naming the file.
	bmp := filepath.Join(t.TempDir(), "small.png")
	g := image.NewGray(image.Rect(0, 0, 5, 5))
	g.SetGray(1, 1, color.Gray{Y: 255})
	bf, _ := os.Create(bmp)
	png.Encode(bf, g)
	bf.Close()
	_, _, err = runCLI(t, "mask", "show", "--mask", "bitmap:"+bmp, "--out", out)
	if err == nil || !strings.Contains(err.Error(), bmp) || !strings.Contains(err.Error(), "28x28") {
		t.Errorf("bitmap of 5x5 on 28x28: %v, want an error naming the file and the sizes", err)
	}
	if _, _, err := runCLI(t, "mask", "show", "--mask", "cycle"); err == nil || !strings.Contains(err.Error(), "--out") {
		t.Errorf("no --out: %v", err)
	}
}

// TestTrainMaskFlags checks that --mask and --bottleneck set the model's
// options, that a resumed run refuses them, and that bad values are clear
// errors.
func TestTrainMaskFlags(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if _, stderr, err := runCLI(t, "train", "--data", "fashionmnist", "--preset", "tiny", "--embedded", "--max-steps", "1",
		"--batch", "8", "--train-limit", "16", "--test-limit", "8", "--mask", "cycle", "--bottleneck", "7", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	rc, err := experiment.ReadRunConfig(run)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Resolve(); err != nil {
		t.Fatal(err)
	}
	if c := rc.ModelConfig.(realnvp.Config); c.Mask != "cycle" || c.Bottleneck != 7 {
		t.Errorf("config: mask %q bottleneck %d, want cycle 7", c.Mask, c.Bottleneck)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", run, "--resume", "--mask", "horizontal"}, "--mask"},
		{[]string{"--out", run + "2", "--mask", "spiral"}, "spiral"},
		{[]string{"--out", run + "2", "--bottleneck", "-3"}, "--bottleneck -3"},
		{[]string{"--out", run + "2", "--mask", "bitmap:" + filepath.Join(t.TempDir(), "none.png")}, "none.png"},
	} {
		args := append([]string{"train", "--data", "fashionmnist", "--preset", "tiny", "--embedded"}, tc.args...)
		if _, _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}
