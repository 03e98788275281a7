package serve

import (
	"context"
	"errors"
	"image"

	"github.com/flowood/flowood/detector"
)

// The detector scores images in chunks of a fixed size (flow.EvalChunk,
// 8), padding a short chunk, so that a score does not depend on the
// batch; a request of one image then costs as much as eight. The batcher
// gives the padding real work: a worker that takes a request also takes
// every request already waiting, up to maxBatch images, and scores them
// in one call. It never waits for more to arrive, so an idle server adds
// no latency. Scores are the same whatever the grouping (the detector's
// promise, tested in detector), so grouping is invisible to clients.
const maxBatch = 64

// job is one request's images and where its result goes.
type job struct {
	ctx  context.Context
	imgs []image.Image
	done chan jobResult // buffered: a worker never blocks on a gone client
}

type jobResult struct {
	res []detector.Result
	err error
}

// worker scores jobs from s.jobs until ctx is done.
func (s *Server) worker(ctx context.Context) {
	for {
		var first *job
		select {
		case first = <-s.jobs:
		case <-ctx.Done():
			return
		}
		batch, n := []*job{first}, len(first.imgs)
	gather:
		for n < maxBatch {
			select {
			case j := <-s.jobs:
				batch, n = append(batch, j), n+len(j.imgs)
			default:
				break gather
			}
		}
		s.scoreBatch(batch)
	}
}

// scoreBatch scores the live jobs of batch together; when an image is
// bad, each job is scored alone so that only its own request fails.
func (s *Server) scoreBatch(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		var imgs []image.Image
		for _, j := range live {
			imgs = append(imgs, j.imgs...)
		}
		s.met.inflight.Add(float64(len(live)))
		res, err := s.det.Score(context.Background(), imgs)
		s.met.inflight.Sub(float64(len(live)))
		var ie *detector.InputError
		if err == nil || !errors.As(err, &ie) {
			for _, j := range live {
				if err != nil {
					j.done <- jobResult{err: err}
					continue
				}
				j.done <- jobResult{res: res[:len(j.imgs):len(j.imgs)]}
				res = res[len(j.imgs):]
			}
			return
		}
	}
	for _, j := range live {
		s.met.inflight.Inc()
		res, err := s.det.Score(j.ctx, j.imgs)
		s.met.inflight.Dec()
		j.done <- jobResult{res: res, err: err}
	}
}
