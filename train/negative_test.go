package train_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/model/realnvp"
	"github.com/flowood/flowood/ood"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train"
)

// negLossRef is eq. 6 as the reference code computes it, written out in
// float64 from the paper's scale: the reference's log p of an image is
// log p(u) - D ln 256 + D ln(255/256), its nll per example the negative of
// that, and the loss 0.5·(mean nll(train) + mean log p(OOD above c)), or
// the mean nll alone when no OOD example is above c. It returns the loss
// in nats per example.
func negLossRef(lp []float64, d int, c float64) float64 {
	ref := func(v float64) float64 { return v - float64(d)*math.Log(256) + float64(d)*math.Log(255.0/256) }
	b := len(lp) / 2
	var pos, neg float64
	n := 0
	for i, v := range lp {
		if i < b {
			pos += -ref(v) / float64(b)
		} else if ref(v) > c {
			neg += ref(v)
			n++
		}
	}
	if n == 0 {
		return pos
	}
	return 0.5 * (pos + neg/float64(n))
}

// TestNegativeLoss checks the loss of Negative (weight 1) and its
// gradient by the log-likelihoods against the reference's formula in
// nats: the loss in bits/dim is an affine function of the reference's
// loss in nats (the constant terms differ: the 255/256 rescaling and the
// bits/dim offset), so differences of losses, and gradients, must be in
// the ratio 1/(D ln 2), for batches with all, some and none of the OOD
// examples above c.
func TestNegativeLoss(t *testing.T) {
	s := datakind.ImageShape(28, 28, 1)
	d := s.Dim()
	c := -3000.0
	cu := train.NegativeThresholdNats(c, s)
	for i, lp := range [][]float64{
		{-1000, 500, 2000, 1500},         // 0: both OOD above c
		{-1000, 500, cu - 10, cu + 3},    // 1: one above
		{-1000, 500, cu - 10, cu - 1000}, // 2: none above
	} {
		o := train.Negative{Threshold: c}
		x := make([]float32, len(lp))
		for j, v := range lp {
			x[j] = float32(v)
		}
		leaf := tensor.FromData(x, len(x)).SetRequiresGrad(true)
		loss := o.Loss(leaf, s)
		tensor.Backward(loss)
		// gradient: central differences of the reference loss, scaled
		for j := range lp {
			h := 0.5
			up, dn := append([]float64(nil), lp...), append([]float64(nil), lp...)
			up[j] += h
			dn[j] -= h
			want := (negLossRef(up, d, c) - negLossRef(dn, d, c)) / (2 * h) / (float64(d) * math.Ln2)
			if got := float64(leaf.Grad[j]); math.Abs(got-want) > 1e-6*math.Max(1e-3, math.Abs(want)) {
				t.Errorf("%d: d loss / d lp[%d] = %g, want %g", i, j, got, want)
			}
		}
		// value: against the same batch shifted by a constant k below c
		// nowhere, the loss changes as the reference's does
		shifted := make([]float32, len(x))
		lps := append([]float64(nil), lp...)
		for j := range x {
			shifted[j] = x[j] + 1
			lps[j]++
		}
		if i == 1 {
			continue // shifting moves an example across c
		}
		got := float64(o.Loss(tensor.FromData(shifted, len(x)), s).Data[0]) - float64(loss.Data[0])
		want := (negLossRef(lps, d, c) - negLossRef(lp, d, c)) / (float64(d) * math.Ln2)
		if math.Abs(got-want) > 1e-4 {
			t.Errorf("%d: loss difference %g, want %g", i, got, want)
		}
	}
	// the threshold's conversion: the paper's -30000 for 28x28x1
	if got, want := train.NegativeThresholdNats(-30000, s), -30000+784*math.Log(256*256.0/255); math.Abs(got-want) > 1e-9 {
		t.Errorf("threshold in nats of u: %v, want %v", got, want)
	}
}

// mnistHalves returns the embedded MNIST test subset split in two
// disjoint halves: the first is the negative training set, the second
// is scored.
func mnistHalves(t *testing.T) (*data.Images, *data.Images) {
	m, err := data.LoadEmbedded("mnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	n := m.Len() / 2
	first, second := make([]int, n), make([]int, m.Len()-n)
	for i := range first {
		first[i] = i
	}
	for i := range second {
		second[i] = n + i
	}
	return m.Subset(first), m.Subset(second)
}

// TestNegativeTrainingLowersOOD is issue 11's check: negative training of
// a tiny RealNVP on FashionMNIST with MNIST as negative data gives MNIST
// (images not trained on) a clearly lower mean log-likelihood than the
// same run without it, while FashionMNIST keeps a likelihood close to
// the plain run's. All values are computed by scoring both models.
func TestNegativeTrainingLowersOOD(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two tiny models")
	}
	fm, err := data.LoadEmbedded("fashionmnist", "train")
	if err != nil {
		t.Fatal(err)
	}
	fmTest, err := data.LoadEmbedded("fashionmnist", "test")
	if err != nil {
		t.Fatal(err)
	}
	tr, te := fm.Head(1024), fmTest.Head(256)
	negSet, mnist := mnistHalves(t)
	mnist = mnist.Head(256)
	cfg := train.Config{Epochs: 2, Batch: 32, LR: 1e-3, Seed: 5, LogEvery: 1000}
	score := func(m *realnvp.Model, x datakind.Examples) []float64 {
		ll, err := (&ood.LogLikelihood{Model: m, Seed: 1}).Score(context.Background(), x, 0)
		if err != nil {
			t.Fatal(err)
		}
		return ll
	}
	mean := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	type result struct{ fm, mnist, auroc float64 }
	run := func(obj train.Objective) result {
		m := tinyModel()
		r := &train.Run{Model: m, Config: cfg, Train: tr, Objective: obj, Dir: t.TempDir()}
		if _, err := r.Execute(context.Background()); err != nil {
			t.Fatal(err)
		}
		in, out := score(m, te), score(m, mnist)
		return result{mean(in), mean(out), ood.AUROC(in, out)}
	}
	plain := run(nil)
	neg := run(train.Negative{Data: negSet, Threshold: -30000})
	s := datakind.ImageShape(28, 28, 1)
	t.Logf("plain:    fashionmnist %.1f nats (%.3f bpd), mnist %.1f nats (%.3f bpd), AUROC %.3f", plain.fm, s.PerDim(plain.fm), plain.mnist, s.PerDim(plain.mnist), plain.auroc)
	t.Logf("negative: fashionmnist %.1f nats (%.3f bpd), mnist %.1f nats (%.3f bpd), AUROC %.3f", neg.fm, s.PerDim(neg.fm), neg.mnist, s.PerDim(neg.mnist), neg.auroc)
	// "clearly lower": by at least 1 bit/dim (784 ln 2 = 543 nats)
	if !(s.PerDim(neg.mnist) > s.PerDim(plain.mnist)+1) {
		t.Errorf("MNIST mean log-likelihood %.1f with negative training, %.1f without: want it lower by at least 1 bit/dim", neg.mnist, plain.mnist)
	}
	if !(neg.auroc > plain.auroc) {
		t.Errorf("FashionMNIST->MNIST AUROC %.3f with negative training, %.3f without: want it higher", neg.auroc, plain.auroc)
	}
}

// TestNegativeResumeIsExact trains negatively 7 steps straight and 4+3
// steps with a resume in between (the OOD stream crossing its epoch end),
// one pass over each batch and data-parallel (Parallel.BackwardWeighted):
// the weights must be bit-identical, so the stream's position and noise
// are restored.
func TestNegativeResumeIsExact(t *testing.T) {
	tr, _ := fashion(t)
	negSet, _ := mnistHalves(t)
	obj := train.Negative{Data: negSet.Head(40), Threshold: -30000}
	cfg := train.Config{Epochs: 2, Batch: 16, LR: 1e-3, Seed: 3, LogEvery: 1}
	for _, parallel := range []bool{false, true} {
		run := func(m *realnvp.Model, dir string, resume bool) {
			r := &train.Run{Model: m, Config: cfg, Train: tr, Objective: obj, Dir: dir, Resume: resume}
			if parallel {
				r.Parallel = newParallel(t, m, 2)
			}
			if _, err := r.Execute(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		cfg.MaxSteps = 7
		straight := tinyModel()
		run(straight, t.TempDir(), false)
		dir := t.TempDir()
		cfg.MaxSteps = 4
		run(tinyModel(), dir, false)
		cfg.MaxSteps = 7
		resumed := tinyModel()
		run(resumed, dir, true)
		sameWeights(t, straight, resumed)
	}

	// a checkpoint of a plain run cannot resume negative training
	plainDir := t.TempDir()
	cfg.MaxSteps = 2
	if _, err := (&train.Run{Model: tinyModel(), Config: cfg, Train: tr, Dir: plainDir}).Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg.MaxSteps = 4
	_, err := (&train.Run{Model: tinyModel(), Config: cfg, Train: tr, Objective: obj, Dir: plainDir, Resume: true}).Execute(context.Background())
	if err == nil || !strings.Contains(err.Error(), "negative_stream") {
		t.Errorf("resuming a plain run negatively: %v", err)
	}
}
