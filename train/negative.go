package train

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/flowood/flowood/model/datakind"
	"github.com/flowood/flowood/tensor"
	"github.com/flowood/flowood/train/checkpoint"
)

// PairObjective is an Objective that draws, for each training batch of B
// examples, B examples of a second set (Negatives): the loop evaluates
// log p of both in one pass of 2B examples, the training batch first, so
// that batch norms in training mode normalise over both (as the reference
// code does, which concatenates the two batches), and Loss receives the
// 2B log-likelihoods. Its loss must be linear in them with coefficients
// that depend on their values (Coefficients), so that Parallel can
// compute its gradient (Parallel.BackwardWeighted).
type PairObjective interface {
	Objective
	// Negatives returns the second set, of the training set's shape.
	Negatives() datakind.Examples
	// Coefficients returns c and b with Loss(lp) = Σ_i c_i lp_i + b.
	Coefficients(lp []float32, s datakind.Shape) (c []float32, b float64)
}

// Negative is the paper's negative training (App. D, eq. 6): maximise the
// mean log-likelihood of the training batch and push down the
// log-likelihood of the out-of-distribution batch where it exceeds the
// threshold c,
//
//	loss = ( L(train) - w · mean_{x ∈ OOD, log p(x) > c} L(x) ) / (1 + w)
//
// where L is the per-dimension loss (bits/dim for images, PerDim), the
// mean is over the N_OOD examples of the batch above c, and the whole
// second term and the 1/(1+w) are dropped when N_OOD = 0. With w = 1 this
// is the reference code's objective (train_unsup_ood_negative.py:
// 0.5·(nll_train + mean log p_OOD above c), or nll_train alone when no
// OOD example is above c), which is eq. 6 halved; the examples above c
// are counted per batch, as the reference does.
//
// The threshold is in the paper's scale: the paper's c (-30000 nats for
// MNIST-like data, -100000 for colour) is compared with the reference
// code's log-likelihood, which is that of the discrete pixels' density
// on [0, 256)^D with its 255/256 logit rescaling: log p_ref = log p(u) -
// D ln 256 + D ln(255/256), where log p(u) is flowood's log-likelihood of
// the dequantised pixels u in [0, 1)^D. So an image is above c when
//
//	log p(u) > c + D ln 256 - D ln(255/256)  (= c + 4350.5 for 28x28x1).
//
// For tabular data, where nothing is quantised, c is compared with
// log p(x) itself.
type Negative struct {
	// Data is the out-of-distribution set, of the training set's shape.
	Data datakind.Examples
	// Threshold is c in the paper's scale (see the type's doc).
	Threshold float64
	// Weight is w (default 1, the reference's).
	Weight float64
}

// Name returns "negative".
func (Negative) Name() string { return "negative" }

// Negatives returns Data.
func (o Negative) Negatives() datakind.Examples { return o.Data }

// weight returns Weight, 1 when zero.
func (o Negative) weight() float64 {
	if o.Weight == 0 {
		return 1
	}
	return o.Weight
}

// ThresholdNats returns the threshold on flowood's log p (nats; of u in
// [0, 1)^D for images) for examples of shape s: see the type's doc.
func (o Negative) ThresholdNats(s datakind.Shape) float64 {
	return NegativeThresholdNats(o.Threshold, s)
}

// NegativeThresholdNats converts the paper's threshold c into nats of
// flowood's log p for examples of shape s (see Negative).
func NegativeThresholdNats(c float64, s datakind.Shape) float64 {
	if s.Kind == datakind.Tabular {
		return c
	}
	d := float64(s.Dim())
	return c + d*math.Log(256) - d*math.Log(255.0/256)
}

// Loss returns the loss of eq. 6 (see Negative) for the 2B
// log-likelihoods lp: the training batch's B, then the OOD batch's B.
func (o Negative) Loss(lp *tensor.Tensor, s datakind.Shape) *tensor.Tensor {
	coef, constant := o.Coefficients(lp.Data, s)
	weights := tensor.PassOf(lp).FromData(coef, len(coef))
	return tensor.AddScalar(tensor.Sum(tensor.Mul(lp, weights)), float32(constant))
}

// Coefficients returns c and b with the loss of eq. 6 (see Negative)
// equal to Σ_i c_i lp_i + b for the 2B log-likelihoods lp (the training
// batch's B, then the OOD batch's B): c_i = a/(B(1+w)) for the training
// examples and -w·a/(N_OOD(1+w)) for the OOD examples above the
// threshold, 0 for the others, where a is the per-dimension unit's slope
// (Shape.Affine); without OOD examples above it, a/B and 0.
func (o Negative) Coefficients(lp []float32, s datakind.Shape) (coef []float32, constant float64) {
	n := len(lp)
	if n%2 != 0 {
		panic(fmt.Sprintf("train: negative objective of %d log-likelihoods (want the training batch then as many OOD)", n))
	}
	b := n / 2
	a, off := s.Affine()
	c := o.ThresholdNats(s)
	above := 0
	for _, v := range lp[b:] {
		if float64(v) > c {
			above++
		}
	}
	w := o.weight()
	coef = make([]float32, n)
	posScale, constant := 1.0, off
	if above > 0 {
		posScale = 1 / (1 + w)
		constant = (off - w*off) / (1 + w)
		for i, v := range lp[b:] {
			if float64(v) > c {
				coef[b+i] = float32(-w * a / float64(above) / (1 + w))
			}
		}
	}
	for i := 0; i < b; i++ {
		coef[i] = float32(posScale * a / float64(b))
	}
	return coef, constant
}

// negStream draws the batches of a PairObjective's second set: epochs of
// its own, each in an order drawn from the seed and the epoch, cycled as
// long as training lasts, with dequantisation noise from an RNG of its
// own. Its position and RNG are part of the checkpoint (State.Extra), so
// a resumed run draws the same batches.
type negStream struct {
	data  datakind.Examples
	seed  uint64
	epoch int
	pos   int
	rng   *tensor.RNG
	perm  []int
}

// negStreamKey is the key of the stream's state in checkpoint.State.Extra.
const negStreamKey = "negative_stream"

// negStreamState is the stream's state as saved in checkpoints.
type negStreamState struct {
	Epoch int    `json:"epoch"`
	Pos   int    `json:"pos"`
	RNG   []byte `json:"rng"`
}

func newNegStream(data datakind.Examples, seed uint64) *negStream {
	return &negStream{data: data, seed: seed, rng: tensor.NewRNG(seed ^ 0x0dd5eed)}
}

// read fills dst with the next n examples of the stream.
func (s *negStream) read(dst []float32, n int) {
	idx := make([]int, 0, n)
	for len(idx) < n {
		if s.perm == nil {
			s.perm = tensor.NewRNG(s.seed*1_000_033 + 0x9e37 + uint64(s.epoch)).Perm(s.data.Len())
		}
		k := min(n-len(idx), len(s.perm)-s.pos)
		idx = append(idx, s.perm[s.pos:s.pos+k]...)
		s.pos += k
		if s.pos == len(s.perm) {
			s.epoch++
			s.pos = 0
			s.perm = nil
		}
	}
	s.data.Read(dst, idx, s.rng.Rand)
}

// save records the stream's state in st.Extra (a copy of the map).
func (s *negStream) save(st *checkpoint.State) error {
	r, err := s.rng.MarshalBinary()
	if err != nil {
		return err
	}
	b, err := json.Marshal(negStreamState{Epoch: s.epoch, Pos: s.pos, RNG: r})
	if err != nil {
		return err
	}
	extra := map[string]string{}
	for k, v := range st.Extra {
		extra[k] = v
	}
	extra[negStreamKey] = string(b)
	st.Extra = extra
	return nil
}

// restore sets the stream's state from a checkpoint's st; a checkpoint
// without one (of a run that did not train negatively) is an error.
func (s *negStream) restore(st checkpoint.State, path string) error {
	v, ok := st.Extra[negStreamKey]
	if !ok {
		return fmt.Errorf("%s: no %s state: the checkpoint is not of a negative training run", path, negStreamKey)
	}
	var ns negStreamState
	if err := json.Unmarshal([]byte(v), &ns); err != nil {
		return fmt.Errorf("%s: %s: %w", path, negStreamKey, err)
	}
	if ns.Epoch < 0 || ns.Pos < 0 || ns.Pos >= s.data.Len() {
		return fmt.Errorf("%s: %s position %d of epoch %d is outside the %d examples of %s", path, negStreamKey, ns.Pos, ns.Epoch, s.data.Len(), s.data.Label())
	}
	if err := s.rng.UnmarshalBinary(ns.RNG); err != nil {
		return fmt.Errorf("%s: %s RNG: %w", path, negStreamKey, err)
	}
	s.epoch, s.pos, s.perm = ns.Epoch, ns.Pos, nil
	return nil
}
