package train

import (
	"errors"
	"fmt"
	"sync"

	"github.com/flowood/flowood/kernels"
	"github.com/flowood/flowood/nn"
	"github.com/flowood/flowood/tensor"
)

// Parallel computes the gradient of a batch on the cores in parallel
// (data-parallel training): the batch is split into one contiguous part
// per replica of the model, each replica runs forward and backward on its
// part on its own goroutine with single-threaded kernels, its batch norms
// normalising with the statistics of the whole batch (tensor.Group), and
// the replicas' gradients are summed into the model's. The result is the
// gradient of the whole batch, up to rounding. It is faster than one pass
// over the batch with every operation split across the cores because each
// core keeps the activations of its part in its own cache (on this
// project's 2-core machine, RealNVP's cpu preset trained at 175 img/s on
// one core and 228 on two the serial way, 280 data-parallel; see
// docs/perf.md).
type Parallel struct {
	model    Model
	replicas []Model
	group    *tensor.Group
	params   []*tensor.Tensor   // the model's
	rparams  [][]*tensor.Tensor // each replica's
}

// NewParallel returns a Parallel for model m and its replicas, which
// share m's parameters and synchronise their batch norms through group
// (realnvp.Model.Replicas makes them).
func NewParallel[R Model](m Model, replicas []R, group *tensor.Group) (*Parallel, error) {
	if len(replicas) != group.Size() {
		return nil, fmt.Errorf("train: %d replicas for a group of %d", len(replicas), group.Size())
	}
	p := &Parallel{model: m, group: group, params: nn.Params(m)}
	for _, r := range replicas {
		p.replicas = append(p.replicas, r)
		rp := nn.Params(r)
		if len(rp) != len(p.params) {
			return nil, fmt.Errorf("train: a replica has %d parameters, the model %d", len(rp), len(p.params))
		}
		p.rparams = append(p.rparams, rp)
	}
	return p, nil
}

// reshare makes the replicas share the model's tensors again where the
// model's have been given new memory.
func (p *Parallel) reshare() {
	mt := nn.Tensors(p.model)
	for _, r := range p.replicas {
		for i, t := range nn.Tensors(r) {
			if i < len(mt) && len(t.T.Data) > 0 && len(mt[i].T.Data) > 0 && &t.T.Data[0] != &mt[i].T.Data[0] {
				if err := nn.Share(r, p.model); err != nil {
					panic(err)
				}
				break
			}
		}
	}
}

// Replicas returns the number of replicas.
func (p *Parallel) Replicas() int { return len(p.replicas) }

// Backward sets the gradients of the model's parameters to those of
// scale · mean(log p(u)) over the batch u and returns mean(log p(u)) (in
// nats). The batch norms run in training mode: their running statistics
// are updated as a serial pass over the whole batch would. The batch must
// have at least one example per replica.
func (p *Parallel) Backward(u *tensor.Tensor, scale float64) float64 {
	sums := p.backward(u, scale, nil, nil)
	var total float64
	for _, s := range sums {
		total += s
	}
	return total / float64(u.Shape[0])
}

// BackwardWeighted sets the gradients of the model's parameters to those
// of Σ_i c_i log p(u_i) over the batch u, where the coefficients c =
// weigh(lp) depend on the log-likelihoods lp of the whole batch (nats, as
// the forward pass computed them): every replica computes its part's,
// waits for the others, and weigh is called once, on all of them, before
// any backward pass (negative training's weights depend on which OOD
// examples are above the threshold). It returns lp. weigh must return
// len(lp) coefficients. Otherwise as Backward.
func (p *Parallel) BackwardWeighted(u *tensor.Tensor, weigh func(lp []float32) []float32) []float32 {
	lp := make([]float32, u.Shape[0])
	p.backward(u, 0, func(r, lo int, part []float32) []float32 {
		copy(lp[lo:], part)
		return lp
	}, weigh)
	return lp
}

// backward is Backward (gather nil) or BackwardWeighted: with gather
// set, each replica hands its part's log-likelihoods to gather (r, the
// offset of its part, the values), all wait for each other, and weigh is
// called once with the gathered batch; each replica then backpropagates
// the weighted sum of its part. It returns the sum of log p per replica.
func (p *Parallel) backward(u *tensor.Tensor, scale float64, gather func(r, lo int, part []float32) []float32, weigh func([]float32) []float32) []float64 {
	n := u.Shape[0]
	k := len(p.replicas)
	if n < k {
		panic(fmt.Sprintf("train: Parallel.Backward of %d examples on %d replicas", n, k))
	}
	// The model may have been given new memory for its parameters or
	// buffers (a checkpoint loaded by replacement): share it again.
	p.reshare()
	d := len(u.Data) / n
	sums := make([]float64, k)
	var mu sync.Mutex
	var failure any
	// with gather: the barrier between the forward passes and weigh
	var arrived sync.WaitGroup
	var once sync.Once
	var all, coef []float32
	if gather != nil {
		arrived.Add(k)
	}
	kernels.Together(k, func(r int) {
		waiting := gather != nil // not yet arrived at the barrier
		defer func() {
			if e := recover(); e != nil {
				mu.Lock()
				if err, _ := e.(error); failure == nil || (!errors.Is(err, tensor.ErrGroupAborted) && failure == tensor.ErrGroupAborted) {
					failure = e
				}
				mu.Unlock()
				p.group.Abort()
			}
			if waiting {
				arrived.Done() // release the others
			}
		}()
		lo, hi := r*n/k, (r+1)*n/k
		m := p.replicas[r]
		m.SetTraining(true)
		for _, t := range p.rparams[r] {
			clear(t.Grad) // kept from the last step: no allocation
		}
		// Each replica records in a pass of its own whose kernels stay
		// on the replica's goroutine (its core).
		pass := tensor.NewPass(tensor.PassOptions{Grad: true, Workers: 1})
		defer pass.Close()
		part := pass.FromData(u.Data[lo*d:hi*d], append([]int{hi - lo}, u.Shape[1:]...)...)
		lp := m.LogProb(part)
		s := tensor.Sum(lp)
		sums[r] = float64(s.Data[0])
		if gather == nil {
			tensor.Backward(tensor.Scale(s, float32(scale/float64(n))))
			return
		}
		mu.Lock()
		all = gather(r, lo, lp.Data)
		mu.Unlock()
		waiting = false
		arrived.Done()
		arrived.Wait()
		mu.Lock()
		failed := failure != nil
		mu.Unlock()
		if failed {
			return
		}
		once.Do(func() {
			coef = weigh(all)
			if len(coef) != n {
				panic(fmt.Sprintf("train: BackwardWeighted: %d coefficients for %d examples", len(coef), n))
			}
		})
		w := pass.FromData(coef[lo:hi], hi-lo)
		tensor.Backward(tensor.Sum(tensor.Mul(lp, w)))
	})
	if failure != nil {
		// Every replica has returned: the group can be used again.
		p.group.Reset()
		panic(failure)
	}
	// The model's gradients: the replicas' summed in rank order.
	kernels.ParallelFor(len(p.params), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			t := p.params[i]
			g := t.Grad
			if len(g) != len(t.Data) {
				g = make([]float32, len(t.Data))
			}
			clear(g)
			for _, rp := range p.rparams {
				if rg := rp[i].Grad; rg != nil {
					kernels.AddTo(g, rg)
				}
			}
			t.Grad = g
		}
	})
	return sums
}
