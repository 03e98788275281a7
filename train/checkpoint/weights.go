package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/flowood/flowood/nn"
)

// LoadWeights reads only the model weights of the checkpoint directory
// dir into m, as Load does, without reading the training state or the
// optimiser's (which a model that only scores never needs, and which can
// be many times the weights' size). m is changed only if it succeeds.
func LoadWeights(dir string, m nn.Module) error {
	parent, base, err := splitDir(dir)
	if err != nil {
		return err
	}
	src := dir
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		alt, aerr := interrupted(parent, base)
		if aerr != nil {
			return fmt.Errorf("checkpoint: loading %s: %w", dir, aerr)
		}
		if alt == "" {
			return fmt.Errorf("checkpoint: loading %s: %w", dir, err)
		}
		src = alt
	}
	tensors, _, err := ReadSafetensors(filepath.Join(src, ModelFile))
	if err != nil {
		return err
	}
	if err := LoadInto(m, tensors); err != nil {
		return fmt.Errorf("loading %s: %w", dir, err)
	}
	return nil
}
