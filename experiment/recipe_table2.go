package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/features"
	"github.com/flowood/flowood/tensor"
)

func init() {
	addRecipe(&Recipe{
		ID:      "table2a",
		Title:   "Table 2(a): flows on image embeddings (CIFAR-10, CelebA; SVHN where reachable), with a feature extractor trained here",
		Minutes: map[string]float64{"tiny": 2, "cpu": 30, "paper": 60 * 10},
		run:     table2a,
	})
}

// paperTable2a is Table 2(a) of the paper: AUROC (%) of RealNVP on
// EfficientNet embeddings, by training set and OOD set.
var paperTable2a = map[string]map[string]float64{
	"cifar10": {"celeba": 99.99, "svhn": 73.31},
	"celeba":  {"cifar10": 99.99, "svhn": 99.99},
	"svhn":    {"celeba": 100.0, "cifar10": 99.98},
}

// table2a trains the stand-in feature extractor (package features: a
// small convolutional classifier of CIFAR-10 trained with this engine,
// because the paper's ImageNet-pretrained EfficientNet cannot be fetched
// here), writes the embeddings of each reachable set as .npz tables and
// trains the tabular flow (App. O.1's embedding preset at paper and cpu)
// on each, scoring the others as OOD.
func table2a(r *Reproduction) error {
	if err := r.Available("cifar10", "train", false); err != nil {
		r.Printf("**Not run**: the feature extractor is trained on CIFAR-10: %v\n", err)
		return nil
	}
	cfg := features.Config{Height: 32, Width: 32, Channels: 3, Base: 32, Classes: 10}
	opt := features.TrainOptions{Epochs: 3, Batch: 64, LR: 1e-3, Progress: r.Progress}
	limit := 0
	flowPreset := "embedding"
	switch r.Preset {
	case "tiny":
		cfg.Base, opt.Epochs, limit, flowPreset = 8, 1, 2000, "tiny"
	case "paper":
		opt.Epochs = 20
	}
	load := func(name, split string, n int) (*data.Images, error) {
		im, err := LoadData(name, split, false, 32, 32, 3)
		if err != nil {
			return nil, err
		}
		r.noteSources(RunConfig{}, name)
		if n > 0 && n < im.N {
			im = im.Subset(data.SampleIndices(im.N, n, 0))
		}
		return im, nil
	}
	trainIm, err := load("cifar10", "train", limit)
	if err != nil {
		return err
	}
	dir := filepath.Join(r.Out, "embeddings")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The extractor and its embeddings are reused when an earlier run of
	// this reproduction made them with the same settings (manifest.json,
	// written last): a re-run, or one resumed after an interruption, goes
	// straight to the flows.
	want := embeddingsManifest{Version: embeddingsVersion, Config: cfg, Epochs: opt.Epochs, Batch: opt.Batch, LR: opt.LR, Seed: opt.Seed, TrainImages: trainIm.N}
	man, reused, err := readEmbeddingsManifest(dir, want)
	if err != nil {
		return err
	}
	var net *features.Net
	if reused {
		fmt.Fprintf(r.Progress, "reproduce: reusing the feature extractor's embeddings in %s (%s)\n", dir, embeddingsManifestName)
	} else {
		if net, err = features.New(cfg, tensor.NewRNG(0)); err != nil {
			return err
		}
		fmt.Fprintf(r.Progress, "reproduce: training the feature extractor on %d CIFAR-10 images\n", trainIm.N)
		acc, err := features.Train(r.Ctx, net, trainIm, opt)
		if err != nil {
			return err
		}
		man = want
		man.Accuracy, man.Files = acc, map[string]string{}
	}
	// Each set's embeddings as an .npz table: train and test arrays.
	files := map[string]string{}
	sets := map[string][2]string{"cifar10": {"train", "test"}, "celeba": {"train", ""}, "svhn": {"train", "test"}}
	for _, name := range []string{"cifar10", "celeba", "svhn"} {
		if err := r.Available(name, sets[name][0], false); err != nil {
			r.Printf("- %s: **not run**: %v\n", name, err)
			continue
		}
		if reused {
			if f, ok := man.Files[name]; ok {
				files[name] = filepath.Join(dir, f)
				r.noteSources(RunConfig{}, name)
				r.sources[name+" embeddings\t"+files[name]] = true
				continue
			}
			// a set that has become reachable since: the extractor is
			// not kept, so everything is made again
			return fmt.Errorf("%s is reachable now but has no embeddings in %s: delete that folder to make them all again", name, dir)
		}
		var arrays []*data.Array
		emb := func(split string, n int) ([]float32, int, error) {
			im, err := load(name, split, n)
			if err != nil {
				return nil, 0, err
			}
			e, err := features.Extract(r.Ctx, net, im)
			return e, im.N, err
		}
		e, n, err := emb(sets[name][0], limit)
		if err != nil {
			return err
		}
		if sets[name][1] == "" {
			// no test split here (the mirror's CelebA): the last tenth of
			// the embeddings is the test split
			k := n - n/10
			arrays = append(arrays, &data.Array{Name: "train", DType: "<f4", Shape: []int{k, cfg.Dim()}, F32: e[:k*cfg.Dim()]},
				&data.Array{Name: "test", DType: "<f4", Shape: []int{n - k, cfg.Dim()}, F32: e[k*cfg.Dim():]})
		} else {
			arrays = append(arrays, &data.Array{Name: "train", DType: "<f4", Shape: []int{n, cfg.Dim()}, F32: e})
			te, tn, err := emb(sets[name][1], limit/5)
			if err != nil {
				return err
			}
			arrays = append(arrays, &data.Array{Name: "test", DType: "<f4", Shape: []int{tn, cfg.Dim()}, F32: te})
		}
		path := filepath.Join(dir, name+".npz")
		if err := data.WriteNPZFile(path, arrays); err != nil {
			return err
		}
		files[name] = path
		man.Files[name] = filepath.Base(path)
		r.sources[name+" embeddings\t"+path] = true
	}
	if !reused {
		if err := writeJSONFile(filepath.Join(dir, embeddingsManifestName), man); err != nil {
			return err
		}
	}
	acc := man.Accuracy
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	how := "trained here"
	if reused {
		how = "trained here by an earlier run of this reproduction (`embeddings/" + embeddingsManifestName + "`; its embeddings reused)"
	}
	r.Printf("\nFeature extractor: package features, a %d-dimensional embedding from a small convolutional classifier %s on %d CIFAR-10 images for %d epochs (training accuracy %.3f). The paper used a 1792-dimensional EfficientNet pretrained on ImageNet, which cannot be fetched here; features learned on CIFAR-10 alone know less about CelebA and SVHN than ImageNet features do.\n\n",
		cfg.Dim(), how, trainIm.N, opt.Epochs, acc)
	r.Printf("| trained on | OOD | AUROC [95%% CI] | paper (EfficientNet) |\n|---|---|---|---|\n")
	all := map[string]*Metrics{}
	for _, in := range names {
		rc, err := NewRunConfig("tabular", flowPreset, files[in])
		if err != nil {
			return err
		}
		switch r.Preset {
		case "tiny":
			rc.Train.Epochs = 2
		case "cpu":
			// App. O.1's 120 epochs over the 50000 CIFAR-10 embeddings
			// are ~55 minutes on 2 cores; a quarter of them
			rc.Train.Epochs = 30
		}
		run, err := r.Train("tabular-"+in+"-embeddings", rc)
		if err != nil {
			return err
		}
		var oods []string
		for _, o := range names {
			if o != in {
				oods = append(oods, files[o])
			}
		}
		met, err := r.Eval(run, EvalOptions{OOD: oods})
		if err != nil {
			return err
		}
		all[in] = met
		for _, o := range names {
			if o == in {
				continue
			}
			rep := met.OOD[files[o]]["loglik"]
			r.Printf("| %s | %s | %s [%s, %s] | %.2f |\n", in, o, pct(rep.AUROC), pct(rep.AUROCCI[0]), pct(rep.AUROCCI[1]), paperTable2a[in][o])
		}
	}
	return writeJSONFile(filepath.Join(r.Out, "metrics.json"), all)
}

// embeddingsVersion changes whenever the extractor's training or the
// extraction changes, so that embeddings made before are not reused: 2
// since each step clears the gradients (version 1, unrecorded,
// accumulated them over all steps).
const embeddingsVersion = 2

// embeddingsManifestName is the file in the embeddings folder of table2a
// that records how its embeddings were made.
const embeddingsManifestName = "manifest.json"

// embeddingsManifest records the feature extractor's settings, its
// training accuracy and the embeddings file of each set.
type embeddingsManifest struct {
	// Version is embeddingsVersion when the embeddings were made.
	Version     int               `json:"version"`
	Config      features.Config   `json:"config"`
	Epochs      int               `json:"epochs"`
	Batch       int               `json:"batch"`
	LR          float64           `json:"lr"`
	Seed        uint64            `json:"seed"`
	TrainImages int               `json:"train_images"`
	Accuracy    float64           `json:"training_accuracy"`
	Files       map[string]string `json:"files"`
}

// readEmbeddingsManifest returns the manifest in dir and true when it was
// made with the settings of want and all its files exist; false when
// there is none (nothing made yet, or an extraction interrupted before
// the manifest, which is written last). A manifest of other settings is
// an error: the embeddings it lists are not replaced without the user
// moving them away, as a run of another configuration is not.
func readEmbeddingsManifest(dir string, want embeddingsManifest) (embeddingsManifest, bool, error) {
	var m embeddingsManifest
	path := filepath.Join(dir, embeddingsManifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, false, fmt.Errorf("%s: %w", path, err)
	}
	if m.Version != want.Version || m.Config != want.Config || m.Epochs != want.Epochs || m.Batch != want.Batch || m.LR != want.LR ||
		m.Seed != want.Seed || m.TrainImages != want.TrainImages {
		return m, false, fmt.Errorf("%s holds embeddings made with other settings or an older extractor (version %d, want %d); move %s away or use another --out", path, m.Version, want.Version, dir)
	}
	for _, f := range m.Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return m, false, fmt.Errorf("%s lists %s, which is missing: move %s away or use another --out", path, f, dir)
		}
	}
	return m, len(m.Files) > 0, nil
}
