package nn

import "github.com/flowood/flowood/tensor"

// BatchNorm normalises each channel (the last dimension):
// y = gamma*(x-mean)/sqrt(var+eps) + beta, with batch statistics in training
// mode and running statistics in evaluation mode (see Mode).
type BatchNorm struct {
	Gamma, Beta     *tensor.Tensor
	RunMean, RunVar *tensor.Tensor // buffers, saved in checkpoints
	Momentum, Eps   float64
	Mode            *Mode
}

// NewBatchNorm returns a batch norm over c channels governed by mode, with
// PyTorch's defaults (momentum 0.1, eps 1e-5, gamma 1, beta 0, running
// mean 0 and variance 1).
func NewBatchNorm(c int, mode *Mode) *BatchNorm {
	g := tensor.Param(c)
	for i := range g.Data {
		g.Data[i] = 1
	}
	return &BatchNorm{Gamma: g, Beta: tensor.Param(c), RunMean: tensor.New(c),
		RunVar: tensor.Full(1, c), Momentum: 0.1, Eps: 1e-5, Mode: mode}
}

// Forward normalises x.
func (b *BatchNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return tensor.BatchNorm(x, b.Gamma, b.Beta, b.stats(), b.Mode.Train)
}

// ForwardReLU returns tensor.Relu(b.Forward(x)), computed as one operation
// (tensor.BatchNormReLU).
func (b *BatchNorm) ForwardReLU(x *tensor.Tensor) *tensor.Tensor {
	return tensor.BatchNormReLU(x, b.Gamma, b.Beta, b.stats(), b.Mode.Train)
}

// forwardShifted returns Forward(x + shift), or ForwardReLU with relu,
// for a per-channel shift added to every row, in evaluation mode
// (running statistics): the shift is folded into the statistics, as mean
// - shift, instead of being added to every value. It panics in training
// mode, whose batch statistics would cancel the shift.
func (b *BatchNorm) forwardShifted(x *tensor.Tensor, shift []float64, relu bool) *tensor.Tensor {
	st := b.stats()
	if b.Mode.Train || st.Mean == nil {
		panic("nn: BatchNorm.forwardShifted in training mode")
	}
	mean := make([]float32, len(st.Mean))
	for j, m := range st.Mean {
		mean[j] = float32(float64(m) - shift[j])
	}
	st.Mean = mean
	if relu {
		return tensor.BatchNormReLU(x, b.Gamma, b.Beta, st, false)
	}
	return tensor.BatchNorm(x, b.Gamma, b.Beta, st, false)
}

// stats returns the statistics the mode calls for.
func (b *BatchNorm) stats() *tensor.BatchNormStats {
	st := &tensor.BatchNormStats{Mean: b.RunMean.Data, Var: b.RunVar.Data, Momentum: b.Momentum, Eps: b.Eps,
		Group: b.Mode.Group, Rank: b.Mode.Rank}
	if b.Mode.Frozen {
		st.Mean, st.Var = nil, nil
		if !b.Mode.Train {
			st.Mean, st.Var = b.RunMean.Data, b.RunVar.Data
		}
	}
	return st
}

// Visit implements Module.
func (b *BatchNorm) Visit(prefix string, fn func(string, *tensor.Tensor, bool)) {
	fn(Join(prefix, "weight"), b.Gamma, true)
	fn(Join(prefix, "bias"), b.Beta, true)
	fn(Join(prefix, "running_mean"), b.RunMean, false)
	fn(Join(prefix, "running_var"), b.RunVar, false)
}
