package experiment

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
)

// Table 1's pairs: in-distribution dataset -> OOD datasets, grayscale
// and colour.
var (
	grayPairs   = map[string][]string{"fashionmnist": {"mnist", "notmnist"}, "mnist": {"fashionmnist", "notmnist"}}
	colourPairs = map[string][]string{"cifar10": {"celeba", "svhn"}, "celeba": {"cifar10", "svhn"}, "svhn": {"celeba", "cifar10"}}
)

// embeddedTrain lists the datasets whose training split is embedded.
var embeddedTrain = map[string]bool{"fashionmnist": true}

// runConfig returns the configuration of a recipe's run of model on
// dataset at the reproduction's preset: tiny trains the tiny model for a
// score of steps (on the embedded subset where there is one, else on
// 1000 examples), cpu the cpu model for cpuEpochs epochs of the full
// training set, paper the paper model as App. E trains it.
func (r *Reproduction) runConfig(modelName, dataset string, cpuEpochs int, seed uint64) (RunConfig, error) {
	return r.runConfigPreset(modelName, r.Preset, dataset, cpuEpochs, seed)
}

// runConfigPreset is runConfig with the model's preset given apart from
// the reproduction's (App. K's model is the preset appk_cpu at the
// reproduction's cpu preset, trained as cpu runs are).
func (r *Reproduction) runConfigPreset(modelName, modelPreset, dataset string, cpuEpochs int, seed uint64) (RunConfig, error) {
	rc, err := NewRunConfig(modelName, modelPreset, dataset)
	if err != nil {
		return RunConfig{}, err
	}
	rc.Train.Seed, rc.Data.SubsetSeed = seed, seed
	switch r.Preset {
	case "tiny":
		rc.Train.MaxSteps, rc.Train.TestLimit = 20, 100
		if embeddedTrain[dataset] {
			rc.Data.Embedded = true
		} else {
			rc.Data.TrainLimit = 1000
		}
	case "cpu":
		rc.Train.Epochs, rc.Train.TestLimit = cpuEpochs, 2000
	}
	return rc, nil
}

// evalLimit is the examples scored per set: all of them but at tiny.
func (r *Reproduction) evalLimit() int {
	if r.Preset == "tiny" {
		return 100
	}
	return 0
}

// reachable returns the OOD sets of in that can be read (embedded for
// an embedded run), and a report line for each that cannot.
func (r *Reproduction) reachable(rc RunConfig, oods []string) []string {
	var ok []string
	for _, o := range oods {
		if err := r.Available(o, "", rc.Data.Embedded && embeddedTest[o]); err != nil {
			r.Printf("- %s -> %s: **not run**: %v\n", rc.Data.Name, o, err)
			continue
		}
		ok = append(ok, o)
	}
	return ok
}

// trainable reports whether a model of dataset in can be trained and
// evaluated here: its training split and its held-out split readable.
func (r *Reproduction) trainable(in string, embedded bool) error {
	if err := r.Available(in, "train", embedded); err != nil {
		return err
	}
	split, err := heldOutSplit(in)
	if err != nil {
		return err
	}
	return r.Available(in, split, embedded && embeddedTest[in])
}

var embeddedTest = map[string]bool{"fashionmnist": true, "mnist": true, "notmnist": true}

// pct formats an AUROC in percent, as Table 1 prints it.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.1f", 100*v)
}

func init() {
	addRecipe(&Recipe{
		ID:      "table1",
		Title:   "Table 1: AUROC of OOD detection by log-likelihood, RealNVP and Glow, every reachable pair",
		Minutes: map[string]float64{"tiny": 2, "cpu": 60, "paper": 60 * 24 * 11},
		run:     table1,
	})
	addRecipe(&Recipe{
		ID:      "fig1a",
		Title:   "Figure 1a / 6: histograms of log-likelihood, RealNVP trained on FashionMNIST with MNIST and NotMNIST",
		Minutes: map[string]float64{"tiny": 1, "cpu": 10, "paper": 60 * 24 * 11},
		run:     fig1a,
	})
	addRecipe(&Recipe{
		ID:      "scores",
		Title:   "OOD scores that work: every score of flowood eval on Table 1's grayscale pairs, with 95% bootstrap intervals",
		Minutes: map[string]float64{"tiny": 4, "cpu": 120, "paper": 60 * 24 * 50},
		run:     scoresRecipe,
	})
}

// tableModels are the models Table 1 compares, those registered.
func tableModels() []string {
	var out []string
	for _, m := range []string{"realnvp", "glow"} {
		if _, err := NewRunConfig(m, "tiny", "mnist"); err == nil {
			out = append(out, m)
		}
	}
	return out
}

func table1(r *Reproduction) error {
	cpuEpochs := 2
	type row struct {
		model, in, out string
		m              *Metrics
	}
	var rows []row
	all := map[string]any{}
	r.Printf("Rows not run (data not reachable here):\n\n")
	// the rows measured are reported even when a later run fails or is
	// interrupted
	runErr := func() error {
		for _, colour := range []bool{false, true} {
			pairs := grayPairs
			if colour {
				pairs = colourPairs
			}
			var ins []string
			for in := range pairs {
				ins = append(ins, in)
			}
			sort.Strings(ins)
			for _, modelName := range tableModels() {
				for _, in := range ins {
					rc, err := r.runConfig(modelName, in, cpuEpochs, 0)
					if err != nil {
						return err
					}
					if err := r.trainable(in, rc.Data.Embedded); err != nil {
						r.Printf("- %s trained on %s: **not run**: %v\n", modelName, in, err)
						continue
					}
					oods := r.reachable(rc, pairs[in])
					if len(oods) == 0 {
						continue
					}
					run, err := r.Train(modelName+"-"+in, rc)
					if err != nil {
						return err
					}
					// resize variants: only OOD sets flowood resized get
					// them (CelebA for CIFAR-10; the grayscale sets are native)
					met, err := r.Eval(run, EvalOptions{OOD: oods, Limit: r.evalLimit(), MatchCompression: true, ResizeVariants: ResizeMethods})
					if err != nil {
						return err
					}
					all[modelName+"/"+in] = met
					var sets []string
					for o := range met.OOD {
						sets = append(sets, o)
					}
					sort.Strings(sets)
					for _, o := range sets {
						rows = append(rows, row{modelName, in, o, met})
					}
				}
			}
		}
		return nil
	}()
	r.Printf("\n## AUROC (%%), in-distribution positive, score = log-likelihood\n\n")
	r.Printf("| model | trained on | OOD | AUROC [95%% CI] | paper | mean bits/dim in / OOD |\n|---|---|---|---|---|---|\n")
	for _, w := range rows {
		rep := w.m.OOD[w.out]["loglik"]
		ci := ""
		if rep.AUROCCI != nil {
			ci = fmt.Sprintf(" [%s, %s]", pct(rep.AUROCCI[0]), pct(rep.AUROCCI[1]))
		}
		paper := "–"
		base, _, _ := strings.Cut(w.out, "@")
		if v, ok := PaperAUROC[w.model][w.in][base]; ok {
			paper = fmt.Sprintf("%.1f", v)
		}
		r.Printf("| %s | %s | %s | %s%s | %s | %.3f / %.3f |\n", w.model, w.in, w.out, pct(rep.AUROC), ci, paper,
			float64(w.m.In.MeanBPD), float64(w.m.OODSets[w.out].MeanBPD))
	}
	if err := writeJSONFile(filepath.Join(r.Out, "metrics.json"), all); err != nil {
		return err
	}
	if runErr != nil {
		return runErr
	}
	r.Printf("\nPer-run metrics (every metric, thresholds, set sizes): `metrics.json` here and `runs/*/eval/metrics.json`.\n")
	if r.Preset == "cpu" {
		r.Printf("\nThe `cpu` preset trains each model for %d epochs of the full training set: far less than the paper's 80 epochs of the App. E models; the effect (OOD data of the grayscale pairs gets higher likelihood) shows already.\n", cpuEpochs)
	}
	var evaluated []resizeRun
	for _, w := range rows {
		evaluated = append(evaluated, resizeRun{w.model, w.in, w.m})
	}
	reportResizing(r, evaluated)
	for _, w := range rows {
		if w.m.Lossy != nil {
			r.Printf("\n**Lossy training data.** %s's images here went through %s (the offline mirror's copy). A flow trained on them learns that compression's local statistics, so raw OOD images look unusual to it for a reason the paper's lossless data do not have. Each OOD set of such a run is also scored after the same round trip at the model's resolution (Go's image/jpeg), as NAME@jpegQ: compare those rows with the paper's.\n", w.in, w.m.Lossy)
			break
		}
	}
	return nil
}

func fig1a(r *Reproduction) error {
	rc, err := r.runConfig("realnvp", "fashionmnist", 2, 0)
	if err != nil {
		return err
	}
	oods := r.reachable(rc, []string{"mnist", "notmnist"})
	run, err := r.Train("realnvp-fashionmnist", rc)
	if err != nil {
		return err
	}
	met, err := r.Eval(run, EvalOptions{OOD: oods, Limit: r.evalLimit()})
	if err != nil {
		return err
	}
	hist := filepath.Join("runs", "realnvp-fashionmnist", "eval", "loglik-hist.png")
	r.Printf("![log-likelihood histogram](%s)\n\n", hist)
	r.Printf("The paper's Fig. 1a: MNIST gets higher likelihood than FashionMNIST, the data the flow was trained on.\n\n")
	r.Printf("| set | n | mean log-likelihood (nats) | mean bits/dim |\n|---|---|---|---|\n")
	r.Printf("| %s %s | %d | %.1f | %.3f |\n", met.In.Dataset, met.In.Split, met.In.N, float64(met.In.MeanLogLik), float64(met.In.MeanBPD))
	for _, o := range oods {
		s := met.OODSets[o]
		r.Printf("| %s %s (OOD) | %d | %.1f | %.3f |\n", s.Dataset, s.Split, s.N, float64(s.MeanLogLik), float64(s.MeanBPD))
	}
	return writeJSONFile(filepath.Join(r.Out, "metrics.json"), met)
}

// scoresRecipe trains, per grayscale in-distribution set, the model as an
// ensemble of three seeds (for WAIC; TrainEnsemble), a background model
// (Ren et al.'s mu = 0.2) and a general-domain model of Tiny-ImageNet at the same shape where the
// data are reachable, and evaluates every score.
func scoresRecipe(r *Reproduction) error {
	var ins []string
	for in := range grayPairs {
		ins = append(ins, in)
	}
	sort.Strings(ins)
	all := map[string]*Metrics{}
	for _, in := range ins {
		rc, err := r.runConfig("realnvp", in, 2, 0)
		if err != nil {
			return err
		}
		if err := r.trainable(in, rc.Data.Embedded); err != nil {
			r.Printf("- trained on %s: **not run**: %v\n", in, err)
			continue
		}
		oods := r.reachable(rc, grayPairs[in])
		run, err := r.TrainEnsemble("realnvp-"+in, rc, 3)
		if err != nil {
			return err
		}
		// waic's members: those of the run's ensemble.json
		opt := EvalOptions{OOD: oods, Limit: r.evalLimit(), Scores: []string{"ic", "ic_lzma", "typicality", "dose", "lr", "waic"}}
		bg := rc
		bg.Data.BackgroundNoise = 0.2
		if opt.Background, err = r.Train("realnvp-"+in+"-background", bg); err != nil {
			return err
		}
		if r.Available("tinyimagenet", "val", false) == nil {
			sh := rc.Data.Shape
			g, err := NewRunConfigShape("realnvp", r.Preset, "tinyimagenet", sh)
			if err == nil {
				g.Train = rc.Train
				g.Data.TrainLimit = rc.Data.TrainLimit
				g.Data.TrainSplit = "val" // the mirror holds Tiny-ImageNet's val split only
				if run, err := r.Train("realnvp-tinyimagenet-"+fmt.Sprintf("%dx%dx%d", sh.Height, sh.Width, sh.Channels), g); err == nil {
					opt.Scores, opt.General = append(opt.Scores, "general"), run
				} else {
					r.Printf("- general-domain model: **not trained**: %v\n", err)
				}
			}
		} else {
			r.Printf("- general-domain score: Tiny-ImageNet is not reachable here; the score general is left out\n")
		}
		met, err := r.Eval(run, opt)
		if err != nil {
			return err
		}
		all[in] = met
	}
	r.Printf("\n## AUROC (%%) of each score [95%% bootstrap interval], higher score = more in-distribution\n\n")
	for _, in := range ins {
		met, ok := all[in]
		if !ok {
			continue
		}
		names := append([]string(nil), met.Scores...)
		r.Printf("Trained on %s:\n\n| OOD | %s | best |\n|---|%s---|\n", in, strings.Join(names, " | "), strings.Repeat("---|", len(names)))
		var oods []string
		for o := range met.OOD {
			oods = append(oods, o)
		}
		sort.Strings(oods)
		for _, o := range oods {
			best, bestV := "", -1.0
			r.Printf("| %s |", o)
			for _, sc := range names {
				rep := met.OOD[o][sc]
				r.Printf(" %s [%s, %s] |", pct(rep.AUROC), pct(rep.AUROCCI[0]), pct(rep.AUROCCI[1]))
				if rep.AUROC > bestV {
					best, bestV = sc, rep.AUROC
				}
			}
			r.Printf(" %s |\n", best)
		}
		r.Printf("\n")
	}
	r.Printf("## Beside the published numbers\n\n")
	r.Printf("Each score's AUROC (%%) measured here beside the one its own paper reports for the same pair, where a number could be read in a source reachable here (`ScorePapers` in experiment/published.go says where each was read, or looked for). The papers measured theirs with their own models and training budgets (PixelCNN++, Glow, ensembles of their own), not with this RealNVP: compare which scores work, not the values.\n\n")
	for _, in := range ins {
		if met, ok := all[in]; ok {
			r.Printf("%s", publishedTables(in, met, ScorePapers, "RealNVP, preset "+r.Preset))
		}
	}
	for _, p := range ScorePapers {
		if len(p.AUROCs) == 0 {
			r.Printf("- %s (%s): %s (looked in: %s)\n", strings.Join(p.Scores, ", "), p.Paper, notFound, p.Searched)
		}
	}
	return writeJSONFile(filepath.Join(r.Out, "metrics.json"), all)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}
