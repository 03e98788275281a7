package experiment

import (
	"os"
	"path/filepath"
	"testing"
)

// TestHeldOutAndOODSplits checks which split models are tested on: the
// held-out split is test or val and never train; an OOD set falls back
// to another split only when neither test nor val can be had here.
func TestHeldOutAndOODSplits(t *testing.T) {
	mirror := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("FLOWOOD_MIRROR", mirror)
	for name, want := range map[string]string{"cifar10": "test", "celeba": "test", "tinyimagenet": "val", "fashionmnist": "test"} {
		if got, err := heldOutSplit(name); err != nil || got != want {
			t.Errorf("heldOutSplit(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := heldOutSplit("nosuch"); err == nil {
		t.Error("heldOutSplit of an unknown data set: no error")
	}
	// cifar10's test split can be downloaded: it is used, not train.
	if got := oodSplit("cifar10", false); got != "test" {
		t.Errorf("oodSplit(cifar10) = %q, want test", got)
	}
	// celeba's test and val splits need the full-size archive, which has
	// no download location: with nothing local, test (the load will say
	// where it looked) ...
	if got := oodSplit("celeba", false); got != "test" {
		t.Errorf("oodSplit(celeba) with nothing local = %q, want test", got)
	}
	// ... and with the training subset in the mirror, that subset.
	p := filepath.Join(mirror, "celeba", "img_align_celeba-89x109-first10000.zip")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("not the mirror's zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := oodSplit("celeba", false); got != "train" {
		t.Errorf("oodSplit(celeba) with the subset in the mirror = %q, want train", got)
	}
	if got := oodSplit("celeba", true); got != "test" {
		t.Errorf("oodSplit(celeba, embedded) = %q, want test", got)
	}
}
