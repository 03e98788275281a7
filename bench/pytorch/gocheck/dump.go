//go:build ignore

// Command dump writes a flowood RealNVP with randomised parameters, an input
// batch, its log-likelihoods (evaluation and training mode) and the
// gradients of the training loss to a JSON file, so that
// bench/pytorch/crosscheck.py can load the same numbers into the PyTorch
// reference and compare. Run from the repository root:
//
//	go run bench/pytorch/gocheck/dump.go -preset cpu -out /tmp/flowood_dump.json
package main

import (
	"encoding/json"
	"flag"
	"log"
	"os"
	"strings"

	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

type named struct {
	Shape []int     `json:"shape"`
	Data  []float32 `json:"data"`
}

func main() {
	preset := flag.String("preset", "cpu", "realnvp preset")
	batch := flag.Int("batch", 8, "batch size")
	out := flag.String("out", "flowood_dump.json", "output file")
	flag.Parse()
	cfg, err := realnvp.Preset(*preset)
	if err != nil {
		log.Fatal(err)
	}
	// bench.py's networks: plain convolutions, zero output convolutions.
	cfg.WeightNorm, cfg.OutInit = "off", "zero"
	rng := tensor.NewRNG(7)
	m := realnvp.New(cfg, rng)
	// Perturb every tensor so no coupling is the identity (the last conv of
	// each st-network starts at zero) and batch-norm buffers are not 0/1.
	ts := nn.Tensors(m)
	dump := map[string]any{"config": cfg, "batch": *batch}
	tensors := map[string]named{}
	var order []string
	for _, t := range ts {
		if strings.HasSuffix(t.Name, "running_var") {
			rng.Uniform(t.T.Data, 0.5, 1.5)
		} else {
			noise := make([]float32, len(t.T.Data))
			rng.Uniform(noise, -0.05, 0.05)
			for i := range noise {
				t.T.Data[i] += noise[i]
			}
		}
		tensors[t.Name] = named{t.T.Shape, append([]float32(nil), t.T.Data...)}
		order = append(order, t.Name)
	}
	dump["tensors"] = tensors
	dump["order"] = order
	u := tensor.New(*batch, cfg.Height, cfg.Width, cfg.Channels)
	rng.Uniform(u.Data, 0, 1)
	dump["u"] = named{u.Shape, u.Data}

	m.SetTraining(false)
	p := tensor.GradFree()
	dump["lp_eval"] = append([]float32(nil), m.LogProb(p.Input(u)).Data...)
	p.Close()

	m.SetTraining(true)
	lp := m.LogProb(u)
	dump["lp_train"] = append([]float32(nil), lp.Data...)
	loss := tensor.Scale(tensor.Mean(lp), -1)
	tensor.Backward(loss)
	grads := map[string][]float32{}
	nParams := 0
	for _, t := range ts {
		if t.Trainable {
			nParams += len(t.T.Data)
			grads[t.Name] = append([]float32(nil), t.T.Grad...)
		}
	}
	dump["grads"] = grads
	dump["params"] = nParams
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	if err := json.NewEncoder(f).Encode(dump); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	log.Printf("%s: %d trainable parameters, wrote %s", *preset, nParams, *out)
}
