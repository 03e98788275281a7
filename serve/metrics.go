package serve

import (
	"math"
	"net/http"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/flowood/flowood/detector"
)

// metrics are the server's Prometheus collectors, in a registry of its
// own (not the process-wide default one), so that two servers in one
// process, or a server in a test, do not share counts.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inflight prometheus.Gauge
	images   *prometheus.CounterVec
	bpd      prometheus.Histogram
	// scores holds a histogram per score computed, oodBy the images
	// below each score's threshold.
	scores map[string]prometheus.Histogram
	oodBy  *prometheus.CounterVec
}

// newMetrics returns the collectors of a server of det; in gives, per
// score, the run's in-distribution test scores (scores.csv), from which
// each score's histogram takes its buckets (scoreBuckets).
func newMetrics(det *detector.Detector, in map[string][]float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowood_http_requests_total",
			Help: "HTTP requests answered, by handler, method and status code.",
		}, []string{"handler", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flowood_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by handler.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms .. 33 s
		}, []string{"handler"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flowood_scoring_in_flight",
			Help: "Requests being scored now.",
		}),
		images: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flowood_images_scored_total",
			Help: "Images scored, by verdict of the primary score (in: at or above its threshold; ood: below).",
		}, []string{"verdict"}),
		bpd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowood_score_bits_per_dim",
			Help:    "Bits per dimension of the images scored (lower = more in-distribution).",
			Buckets: prometheus.LinearBuckets(0.5, 0.5, 19), // 0.5 .. 9.5
		}),
	}
	m.oodBy = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flowood_images_ood_total",
		Help: "Images scored below a score's calibrated threshold (OOD by that score), by score.",
	}, []string{"score"})
	m.scores = map[string]prometheus.Histogram{}
	thr := det.Thresholds()
	for _, name := range det.Scores() {
		t, ok := thr[name]
		h := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "flowood_score",
			Help: "Scores of the images scored, by score (higher = more in-distribution); the buckets are the run's " +
				"in-distribution test quantiles around the score's threshold (see docs/serve.md).",
			ConstLabels: prometheus.Labels{"score": name},
			Buckets:     scoreBuckets(t, ok, in[name]),
		})
		m.scores[name] = h
		m.reg.MustRegister(h)
	}
	m.reg.MustRegister(m.requests, m.duration, m.inflight, m.images, m.bpd, m.oodBy,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// scoreBuckets returns the upper bounds of a score's histogram buckets.
// With the in-distribution test scores in of the calibration (two or
// more), they are its 1, 5, 25, 50, 75, 95 and 99% quantiles, the
// threshold t (when hasT), and steps of the distance s from the
// threshold to the median, doubling away from it: t - s·2^k (k = 0..6)
// below, where OOD inputs fall, and median + s·2^k (k = 0..3) above
// (where the likelihood puts MNIST under a FashionMNIST flow). Without
// them: 0 and ±10^k, k = 0..6, a symmetric log scale for any unit.
func scoreBuckets(t float64, hasT bool, in []float64) []float64 {
	var b []float64
	var v []float64
	for _, x := range in {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	if len(v) >= 2 {
		slices.Sort(v)
		q := func(p float64) float64 { return v[int(math.Round(p*float64(len(v)-1)))] }
		if !hasT || math.IsInf(t, 0) || math.IsNaN(t) {
			t, hasT = q(0.05), true
		}
		med := q(0.5)
		s := med - t
		if !(s > 0) {
			s = math.Max(math.Abs(med)*0.01, 1e-3)
		}
		for _, p := range []float64{0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99} {
			b = append(b, q(p))
		}
		b = append(b, t)
		for k := range 7 {
			b = append(b, t-s*math.Ldexp(1, k))
		}
		for k := range 4 {
			b = append(b, med+s*math.Ldexp(1, k))
		}
	} else {
		b = append(b, 0)
		for k := range 7 {
			p := math.Pow(10, float64(k))
			b = append(b, p, -p)
		}
		if hasT && !math.IsInf(t, 0) && !math.IsNaN(t) {
			b = append(b, t)
		}
	}
	slices.Sort(b)
	return slices.Compact(b)
}

// instrument counts and times the requests h answers as handler name.
func (m *metrics) instrument(name string, h http.HandlerFunc) http.Handler {
	l := prometheus.Labels{"handler": name}
	return promhttp.InstrumentHandlerCounter(m.requests.MustCurryWith(l),
		promhttp.InstrumentHandlerDuration(m.duration.MustCurryWith(l), h))
}

// observe records one image's score.
func (m *metrics) observe(r detector.Result) {
	verdict := "in"
	if r.OOD {
		verdict = "ood"
	}
	m.images.WithLabelValues(verdict).Inc()
	m.bpd.Observe(r.BitsPerDim)
	for name, v := range r.Scores {
		if h := m.scores[name]; h != nil {
			h.Observe(v)
		}
	}
	for name, ood := range r.OODBy {
		if ood {
			m.oodBy.WithLabelValues(name).Inc()
		}
	}
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
