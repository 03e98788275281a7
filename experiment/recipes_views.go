package experiment

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/flowood/flowood/runfile"
	"github.com/flowood/flowood/train"
)

func init() {
	addRecipe(&Recipe{
		ID:      "fig2",
		Title:   "Figures 2 and 8: latent representations of in- and out-of-distribution images (RealNVP on FashionMNIST)",
		Minutes: map[string]float64{"tiny": 1, "cpu": 10, "paper": 60 * 24 * 11},
		run:     fig2,
	})
	addRecipe(&Recipe{
		ID:      "fig16",
		Title:   "Figure 16: resampling the latent's centre square and inverting (RealNVP on FashionMNIST)",
		Minutes: map[string]float64{"tiny": 1, "cpu": 10, "paper": 60 * 24 * 11},
		run:     fig16,
	})
	addRecipe(&Recipe{
		ID:      "logdet",
		Title:   "Beyond the paper: which layers give OOD data its likelihood (RealNVP on FashionMNIST)",
		Minutes: map[string]float64{"tiny": 1, "cpu": 10, "paper": 60 * 24 * 11},
		run:     logdetRecipe,
	})
}

// fashionRun trains (or reuses) the RealNVP on FashionMNIST that the
// view recipes share with table1 and fig1a.
func (r *Reproduction) fashionRun() (string, []string, error) {
	rc, err := r.runConfig("realnvp", "fashionmnist", 2, 0)
	if err != nil {
		return "", nil, err
	}
	oods := r.reachable(rc, []string{"mnist", "notmnist"})
	run, err := r.Train("realnvp-fashionmnist", rc)
	return run, oods, err
}

func fig2(r *Reproduction) error {
	run, oods, err := r.fashionRun()
	if err != nil {
		return err
	}
	out := filepath.Join(r.Out, "latents")
	r.commands = append(r.commands, "flowood viz latents "+run+" --ood "+strings.Join(oods, ",")+" --out "+out)
	if _, err := LatentsView(r.Ctx, run, ViewOptions{OOD: oods, N: 8, Out: out}, 40); err != nil {
		return err
	}
	r.Printf("Columns: x; unsqueeze(z); z averaged over 40 dequantisations; z with batch norm in train mode. Latents drawn as (z + 3)/6.\n\n")
	r.Printf("In-distribution:\n\n![latents](latents/latents-fashionmnist-test.png)\n\n")
	for _, o := range oods {
		r.Printf("%s:\n\n![latents](latents/latents-%s-%s.png)\n\n", o, o, oodSplit(o, false))
	}
	r.Printf("The paper's observation (Sec. 4.1): the latents of OOD images keep the image's structure, for in- and out-of-distribution inputs alike; the flow's transformations are local, not semantic. Arrays: `latents/*.npy`.\n")
	return nil
}

func fig16(r *Reproduction) error {
	run, oods, err := r.fashionRun()
	if err != nil {
		return err
	}
	out := filepath.Join(r.Out, "resample")
	r.commands = append(r.commands, "flowood viz resample "+run+" --ood "+strings.Join(oods, ",")+" --out "+out)
	if _, _, err := ResampleView(r.Ctx, run, ViewOptions{OOD: oods, N: 6, Out: out}, 10, 4); err != nil {
		return err
	}
	r.Printf("Columns: input; reconstruction from its latent; four redraws of the latent's centre 10x10 square.\n\n")
	r.Printf("![resample](resample/resample-fashionmnist-test.png)\n\n")
	for _, o := range oods {
		r.Printf("%s:\n\n![resample](resample/resample-%s-%s.png)\n\n", o, o, oodSplit(o, false))
	}
	r.Printf("The paper's Fig. 16: the redrawn region changes, the rest of the image stays: latent dimensions act on the pixels near them.\n")
	return nil
}

func logdetRecipe(r *Reproduction) error {
	run, oods, err := r.fashionRun()
	if err != nil {
		return err
	}
	out := filepath.Join(r.Out, "logdet")
	n := 1000
	if r.Preset == "tiny" {
		n = 200
	}
	r.commands = append(r.commands, "flowood viz logdet "+run+" --ood "+strings.Join(oods, ",")+" --out "+out)
	terms, err := LogDetView(r.Ctx, run, ViewOptions{OOD: oods, N: n, Out: out})
	if err != nil {
		return err
	}
	r.Printf("![terms](logdet/logdet.png)\n\n![difference](logdet/logdet-diff.png)\n\n")
	r.Printf("| term | layer | fashionmnist test |")
	for _, o := range oods {
		r.Printf(" %s − fashionmnist |", o)
	}
	r.Printf("\n|---|---|---|%s\n", strings.Repeat("---|", len(oods)))
	in := terms["fashionmnist test"]
	for k, tm := range in {
		kind := tm.Kind
		if tm.Term == "prior" {
			kind = "log N(z; 0, I)"
		}
		r.Printf("| %s | %s | %.1f |", tm.Term, kind, tm.Mean)
		for _, o := range oods {
			r.Printf(" %+.1f |", terms[o+" "+oodSplit(o, false)][k].Mean-tm.Mean)
		}
		r.Printf("\n")
	}
	r.Printf("\nMean over %d examples per set, nats; the terms add up to the mean log-likelihood.\n", n)
	return nil
}

func init() {
	addRecipe(&Recipe{
		ID:      "fig3",
		Title:   "Figures 3, 9, 11: coupling-layer inputs, s and -t maps, RealNVP on FashionMNIST with checkerboard and horizontal masks, and Glow (Fig. 9b)",
		Minutes: map[string]float64{"tiny": 1, "cpu": 30, "paper": 60 * 24 * 30},
		run:     fig3,
	})
}

func fig3(r *Reproduction) error {
	run, oods, err := r.fashionRun()
	if err != nil {
		return err
	}
	rc, err := r.runConfig("realnvp", "fashionmnist", 2, 0)
	if err != nil {
		return err
	}
	if err := rc.SetModelOption("mask", "horizontal"); err != nil {
		return err
	}
	hrun, err := r.Train("realnvp-fashionmnist-horizontal", rc)
	if err != nil {
		return err
	}
	// Glow (Fig. 9b): the run table1 trains, reused when there
	grc, err := r.runConfig("glow", "fashionmnist", 2, 0)
	if err != nil {
		return err
	}
	grun, err := r.Train("glow-fashionmnist", grc)
	if err != nil {
		return err
	}
	for _, v := range []struct{ name, run string }{{"checkerboard", run}, {"horizontal", hrun}, {"glow", grun}} {
		out := filepath.Join(r.Out, "coupling-"+v.name)
		r.commands = append(r.commands, "flowood viz coupling "+v.run+" --ood "+strings.Join(oods, ",")+" --index 0,1 --out "+out)
		maps, err := CouplingView(r.Ctx, v.run, ViewOptions{OOD: oods, Index: []int{0, 1}, Out: out})
		if err != nil {
			return err
		}
		title := "RealNVP, " + v.name + " mask"
		if v.name == "glow" {
			title = "Glow (channel-wise couplings after a squeeze and a 1x1 convolution; every squeeze undone and the factored-out channels joined, App. H: s and -t are zero on the half each coupling conditions on)"
		}
		r.Printf("### %s\n\nRows: the couplings in forward order (%d); columns: input, s, -t, output (each tile scaled to its range).\n\n", title, len(maps["fashionmnist test"][0]))
		r.Printf("![in](coupling-%s/coupling-fashionmnist-test-0.png)", v.name)
		for _, o := range oods {
			r.Printf(" ![%s](coupling-%s/coupling-%s-%s-0.png)", o, v.name, o, oodSplit(o, false))
		}
		r.Printf("\n\n")
	}
	r.Printf("The paper's observation (Sec. 4.2, Fig. 3): -t of the early couplings looks like the input itself, for in- and out-of-distribution images alike: the coupling predicts the masked pixels from their neighbours (local correlations) rather than from what the image shows. Arrays: `coupling-*/*.npz`.\n")
	return nil
}

func init() {
	addRecipe(&Recipe{
		ID:      "fig5",
		Title:   "Figure 5 (App. D): negative training, FashionMNIST with MNIST as negative data (and CIFAR-10 with CelebA), against the same runs without it",
		Minutes: map[string]float64{"tiny": 2, "cpu": 90, "paper": 60 * 24 * 30},
		run:     fig5,
	})
}

// fig5 trains each in-distribution set with and without the negative
// set, and evaluates both on the negative set and on a third set the
// negative training never saw (NotMNIST; SVHN for colour, where reachable).
func fig5(r *Reproduction) error {
	cases := []struct{ in, neg, third string }{{"fashionmnist", "mnist", "notmnist"}, {"cifar10", "celeba", "svhn"}}
	var rows, notes, hists []string
	all := map[string]*Metrics{}
	lossy := ""
	for _, cs := range cases {
		plain, err := r.runConfig("realnvp", cs.in, 2, 0)
		if err != nil {
			return err
		}
		if err := r.trainable(cs.in, plain.Data.Embedded); err != nil {
			notes = append(notes, fmt.Sprintf("- %s: **not run**: %v", cs.in, err))
			continue
		}
		if plain.Data.Embedded {
			// there is no embedded MNIST training split: both sets then
			// come from files (below)
			if err := r.trainable(cs.in, false); err != nil {
				notes = append(notes, fmt.Sprintf("- %s with negative %s: **not run**: %v", cs.in, cs.neg, err))
				continue
			}
		}
		if err := r.Available(cs.neg, "train", false); err != nil {
			notes = append(notes, fmt.Sprintf("- %s with negative %s: **not run**: %v", cs.in, cs.neg, err))
			continue
		}
		neg := plain
		neg.Objective = runfile.Objective{Name: train.Negative{}.Name(), NegativeData: cs.neg}
		if plain.Data.Embedded {
			// no embedded MNIST training split: the negative set comes from
			// the mirror, limited like the training set
			neg.Data.Embedded, neg.Data.TrainLimit = false, 2000
			plain.Data.Embedded, plain.Data.TrainLimit = false, 2000
		}
		oods := r.reachable(plain, []string{cs.neg, cs.third})
		runs := map[bool]string{}
		names := map[bool]string{false: "realnvp-" + cs.in, true: "realnvp-" + cs.in + "-negative-" + cs.neg}
		for _, with := range []bool{false, true} {
			rc := plain
			if with {
				rc = neg
			}
			if runs[with], err = r.Train(names[with], rc); err != nil {
				return err
			}
		}
		met := map[bool]*Metrics{}
		for _, with := range []bool{false, true} {
			if met[with], err = r.Eval(runs[with], EvalOptions{OOD: oods, Limit: r.evalLimit(), MatchCompression: true}); err != nil {
				return err
			}
			all[names[with]] = met[with]
			hists = append(hists, fmt.Sprintf("![%s](runs/%s/eval/loglik-hist.png)", names[with], names[with]))
		}
		if met[false].Lossy != nil && lossy == "" {
			lossy = fmt.Sprintf("%s (%s)", cs.in, met[false].Lossy)
		}
		// every set scored, the matched-compression rows NAME@jpegQ too
		var sets []string
		for o := range met[false].OOD {
			sets = append(sets, o)
		}
		sort.Strings(sets)
		for _, o := range sets {
			a, b := met[false].OOD[o]["loglik"], met[true].OOD[o]["loglik"]
			rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s [%s, %s] | %s [%s, %s] | %.0f / %.0f |", cs.in, cs.neg, o,
				pct(a.AUROC), pct(a.AUROCCI[0]), pct(a.AUROCCI[1]), pct(b.AUROC), pct(b.AUROCCI[0]), pct(b.AUROCCI[1]),
				float64(met[false].OODSets[o].MeanLogLik), float64(met[true].OODSets[o].MeanLogLik)))
		}
	}
	r.Printf("\n| trained on | negative data | OOD set | AUROC without [95%% CI] | AUROC with [95%% CI] | mean log-likelihood without / with (nats) |\n|---|---|---|---|---|---|\n")
	for _, row := range rows {
		r.Printf("%s\n", row)
	}
	sets := "full test sets"
	if n := r.evalLimit(); n > 0 {
		sets = fmt.Sprintf("at most %d images a set", n)
	}
	r.Printf("\nAUROC in %%, in-distribution positive, score = log-likelihood, %s.\n", sets)
	if len(hists) > 0 {
		r.Printf("\nLog-likelihood histograms (the paper's Fig. 5 e and c), each run without and with negative training:\n\n%s\n", strings.Join(hists, " "))
	}
	for _, n := range notes {
		r.Printf("%s\n", n)
	}
	if lossy != "" {
		r.Printf("\n**Lossy training data.** %s: the flow learns the compression's local statistics, so each OOD set is also scored after the same round trip at the model's resolution (NAME@jpegQ); those rows are the ones to set beside the paper's.\n", lossy)
	}
	r.Printf("\nThe paper (App. D, Fig. 5): negative training pushes down the likelihood of the negative set it saw (MNIST), and the flow then also separates the third set better or not at all: what it learns is specific to the negative data, not a general notion of OOD. The threshold c is the paper's (-30000 grayscale, -100000 colour, in the reference code's scale; docs/negative-training.md).\n")
	return writeJSONFile(filepath.Join(r.Out, "metrics.json"), all)
}
