package ood

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// DoSE is the density-of-states estimator of Morningstar et al. (2021):
// a model's own summary statistics of an input (for a flow: log p(x), the
// prior term, each layer's log-det, the latent's norm) are typical or
// not of the training data. Each statistic gets a one-dimensional
// Gaussian kernel density estimate on training inputs (bandwidth by
// Scott's rule, 1.06·σ·n^(-1/5)); an input scores the sum over
// statistics of the log-densities of its values (the statistics taken as
// independent, their DoSE_KDE). Higher = more in-distribution.
//
// Statistics constant on the training data (a squeeze's log-det) carry
// nothing and are dropped.
type DoSE struct {
	// Names of the statistics kept, in the order of their columns.
	Names  []string
	inputs []string    // the names of every statistic given to FitDoSE
	keep   []int       // indices of the statistics kept
	ref    [][]float64 // per statistic kept, the training values
	bw     []float64
}

// MaxDoSEReference bounds the training values per statistic that the
// densities sum over (a random subset beyond it): evaluation costs
// statistics x inputs x reference values exponentials.
const MaxDoSEReference = 2000

// FitDoSE fits the densities of the statistics train[s][i] (statistic
// s, training input i), named names[s], drawing the reference subset
// with rng.
func FitDoSE(names []string, train [][]float64, rng *rand.Rand) (*DoSE, error) {
	if len(names) != len(train) || len(train) == 0 {
		return nil, fmt.Errorf("ood: DoSE of %d names and %d statistics", len(names), len(train))
	}
	n := len(train[0])
	if n < 2 {
		return nil, fmt.Errorf("ood: DoSE needs at least 2 training inputs, got %d", n)
	}
	pick := rng.Perm(n)[:min(n, MaxDoSEReference)]
	d := &DoSE{inputs: slices.Clone(names)}
	for s, v := range train {
		if len(v) != n {
			return nil, fmt.Errorf("ood: DoSE statistic %s has %d values, the first %d", names[s], len(v), n)
		}
		var mean, sq float64
		for _, x := range v {
			mean += x
		}
		mean /= float64(n)
		for _, x := range v {
			sq += (x - mean) * (x - mean)
		}
		sd := math.Sqrt(sq / float64(n-1))
		if !(sd > 1e-12*math.Max(1, math.Abs(mean))) {
			continue // constant: no information
		}
		ref := make([]float64, len(pick))
		for i, j := range pick {
			ref[i] = v[j]
		}
		slices.Sort(ref)
		d.Names = append(d.Names, names[s])
		d.keep = append(d.keep, s)
		d.ref = append(d.ref, ref)
		d.bw = append(d.bw, 1.06*sd*math.Pow(float64(len(ref)), -0.2))
	}
	if len(d.keep) == 0 {
		return nil, fmt.Errorf("ood: DoSE: every statistic is constant on the training data")
	}
	return d, nil
}

// Statistics returns the names of the statistics Score takes, in its
// order (those given to FitDoSE).
func (d *DoSE) Statistics() []string { return slices.Clone(d.inputs) }

// doseJSON is a fitted DoSE as JSON.
type doseJSON struct {
	Method     string      `json:"method"`
	Statistics []string    `json:"statistics"`
	Kept       []string    `json:"kept"`
	Bandwidth  []float64   `json:"bandwidth"`
	Reference  [][]float64 `json:"reference"`
}

const doseMethod = "DoSE_KDE: sum over kept statistics of log (1/(n h sqrt(2 pi)) sum_r exp(-((x - r)/h)^2/2)), h the bandwidth, r the reference values"

// MarshalJSON encodes the fitted densities: the statistics Score takes,
// those kept, and each kept one's bandwidth and training values, so that
// a DoSE fitted once (by flowood eval) scores new inputs elsewhere (the
// detector) with the same results, bit for bit.
func (d *DoSE) MarshalJSON() ([]byte, error) {
	return json.Marshal(doseJSON{Method: doseMethod, Statistics: d.inputs, Kept: d.Names, Bandwidth: d.bw, Reference: d.ref})
}

// UnmarshalJSON decodes what MarshalJSON wrote, checking that it is
// consistent (every kept statistic among the statistics, a positive
// finite bandwidth and at least one finite reference value each).
func (d *DoSE) UnmarshalJSON(b []byte) error {
	var j doseJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if len(j.Kept) == 0 || len(j.Bandwidth) != len(j.Kept) || len(j.Reference) != len(j.Kept) {
		return fmt.Errorf("ood: DoSE with %d kept statistics, %d bandwidths and %d reference sets", len(j.Kept), len(j.Bandwidth), len(j.Reference))
	}
	out := DoSE{Names: j.Kept, inputs: j.Statistics, bw: j.Bandwidth, ref: j.Reference}
	for k, name := range j.Kept {
		s := slices.Index(j.Statistics, name)
		if s < 0 {
			return fmt.Errorf("ood: DoSE keeps statistic %q, not among its statistics", name)
		}
		if h := j.Bandwidth[k]; !(h > 0) || math.IsInf(h, 1) {
			return fmt.Errorf("ood: DoSE statistic %q has bandwidth %v", name, h)
		}
		if len(j.Reference[k]) == 0 {
			return fmt.Errorf("ood: DoSE statistic %q has no reference values", name)
		}
		for _, v := range j.Reference[k] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("ood: DoSE statistic %q has the reference value %v", name, v)
			}
		}
		out.keep = append(out.keep, s)
	}
	*d = out
	return nil
}

// Score returns the DoSE score of each input: stats[s][i] is statistic s
// (in the order given to FitDoSE) of input i.
func (d *DoSE) Score(stats [][]float64) []float64 {
	out := make([]float64, len(stats[0]))
	for k, s := range d.keep {
		for i, x := range stats[s] {
			out[i] += kdeLog(d.ref[k], d.bw[k], x)
		}
	}
	return out
}

// kdeLog returns the log of the Gaussian kernel density with bandwidth h
// of the values ref at x, by log-sum-exp (finite far in the tails).
func kdeLog(ref []float64, h, x float64) float64 {
	m := math.Inf(-1)
	for _, r := range ref {
		if e := -0.5 * ((x - r) / h) * ((x - r) / h); e > m {
			m = e
		}
	}
	var s float64
	for _, r := range ref {
		s += math.Exp(-0.5*((x-r)/h)*((x-r)/h) - m)
	}
	return m + math.Log(s) - math.Log(float64(len(ref))*h*math.Sqrt(2*math.Pi))
}
