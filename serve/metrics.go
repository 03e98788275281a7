package serve

import (
	"net/http"

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
}

func newMetrics() *metrics {
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
			Help: "Images scored, by verdict (in: log-likelihood at or above the threshold; ood: below).",
		}, []string{"verdict"}),
		bpd: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "flowood_score_bits_per_dim",
			Help:    "Bits per dimension of the images scored (lower = more in-distribution).",
			Buckets: prometheus.LinearBuckets(0.5, 0.5, 19), // 0.5 .. 9.5
		}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.inflight, m.images, m.bpd,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
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
}

// handler serves the registry in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
