// Package serve is flowood's detector as an HTTP service: a trained run
// (detector.Load) scored over HTTP, with Prometheus metrics and a
// dashboard of the run.
//
//	POST /v1/score   one or more PNG/JPEG images (multipart/form-data, every
//	                 file or image/* part, or one image as the raw body) -> JSON, per
//	                 image: log-likelihood (nats), bits/dim, every configured
//	                 score, the OOD decision of each, ood (the primary score's)
//	GET  /healthz    200 "ok" once the model is loaded
//	GET  /metrics    Prometheus text format
//	GET  /           the dashboard (assets embedded; no CDN)
//	GET  /api/run    the run's configuration, training log, metrics,
//	                 histograms and ROC curves, as JSON for the dashboard
//	GET  /run/FILE   a figure of the run (PNG files under RUN and RUN/eval)
//
// Every failure is a JSON body {"error": "..."} with a 4xx status for the
// client's mistakes (not an image, truncated, too large, wrong size for
// the model) and 5xx for the server's; the server keeps serving.
//
// Limits (Options): the request body size, the pixels of one image (read
// from its header before decoding, so a 50000x50000 PNG of a few bytes is
// refused without allocating), the images per request, the requests
// scored at once and waiting (beyond that: 503 with Retry-After), and a
// per-request deadline. Slow clients are the http.Server's business:
// NewHTTPServer sets read timeouts.
package serve

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"runtime"
	"strings"
	"time"

	// Decoders of the formats /v1/score accepts.
	_ "image/jpeg"
	_ "image/png"

	"github.com/flowood/flowood/detector"
)

// Options bound what one request may ask; zero fields take the defaults.
type Options struct {
	// MaxBodyBytes bounds a request body (default 32 MiB).
	MaxBodyBytes int64
	// MaxPixels bounds width x height of one image, checked from its
	// header before decoding (default 4096 x 4096).
	MaxPixels int
	// MaxImages bounds the images of one request (default 256).
	MaxImages int
	// Workers is the number of requests scored at once (default
	// GOMAXPROCS); each spreads its images over the cores.
	Workers int
	// Queue is the number of requests that may wait for a worker (default
	// 128); a request beyond it gets 503 with Retry-After.
	Queue int
	// Timeout bounds the scoring of one request, waiting included
	// (default 30s); a request over it gets 503.
	Timeout time.Duration
	// Token, when set, is required as "Authorization: Bearer TOKEN" on
	// every route but /healthz.
	Token string
	// Logger receives one line per failed request (default: discard).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = 4096 * 4096
	}
	if o.MaxImages <= 0 {
		o.MaxImages = 256
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Queue <= 0 {
		o.Queue = 128
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server serves one run's detector. It is an http.Handler.
type Server struct {
	det  *detector.Detector
	run  string
	opt  Options
	mux  *http.ServeMux
	root http.Handler
	met  *metrics
	// admit holds a token per request admitted (scoring or waiting).
	admit chan struct{}
	// jobs takes requests to the workers (batcher.go); stop ends them.
	jobs chan *job
	stop context.CancelFunc
}

// New returns the server of the detector det loaded from the run folder
// run (whose files the dashboard shows).
func New(run string, det *detector.Detector, opt Options) *Server {
	opt = opt.withDefaults()
	s := &Server{det: det, run: run, opt: opt, mux: http.NewServeMux(), met: newMetrics(det, inDistribution(run)),
		admit: make(chan struct{}, opt.Workers+opt.Queue), jobs: make(chan *job)}
	var ctx context.Context
	ctx, s.stop = context.WithCancel(context.Background())
	for range opt.Workers {
		go s.worker(ctx)
	}
	s.handle("POST /v1/score", "score", s.score)
	s.handle("/v1/score", "score", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "use POST with PNG or JPEG images")
	})
	s.handle("GET /healthz", "healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	s.handle("GET /metrics", "metrics", s.met.handler().ServeHTTP)
	s.handle("GET /api/run", "api_run", s.apiRun)
	s.handle("GET /run/{file...}", "run_file", s.runFile)
	s.handle("GET /{$}", "dashboard", s.dashboard)
	s.handle("GET /static/{file}", "static", s.static)
	s.root = s.auth(s.mux)
	return s
}

// Close stops the server's scoring workers; call it once the HTTP server
// in front has shut down (requests after Close wait for their deadline).
func (s *Server) Close() { s.stop() }

// handle registers h under pattern, instrumented as handler name.
func (s *Server) handle(pattern, name string, h http.HandlerFunc) {
	s.mux.Handle(pattern, s.met.instrument(name, h))
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.root.ServeHTTP(w, r) }

// auth requires the bearer token, when one is set, on every route but
// /healthz.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opt.Token == "" {
		return next
	}
	want := "Bearer " + s.opt.Token
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && !constantTimeEqual(r.Header.Get("Authorization"), want) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="flowood"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (Authorization: Bearer TOKEN)")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ScoreResponse is the JSON body of a successful POST /v1/score.
type ScoreResponse struct {
	Model      string `json:"model"`
	Checkpoint string `json:"checkpoint"`
	// Threshold is the log-likelihood's (detector.Detector.Threshold),
	// Calibrated whether flowood eval calibrated it.
	Threshold  float64 `json:"threshold"`
	Calibrated bool    `json:"calibrated"`
	// Primary is the score whose decision is each result's ood.
	Primary string `json:"primary"`
	// Thresholds holds each score's threshold (those computed that have
	// one; detector.Detector.Thresholds).
	Thresholds map[string]float64 `json:"thresholds"`
	// Convention says how to read the numbers.
	Convention string        `json:"convention"`
	Results    []ImageResult `json:"results"`
}

// ImageResult is one image's score.
type ImageResult struct {
	// Name is the multipart file name (or field name), or "body".
	Name          string  `json:"name"`
	Width         int     `json:"width"`
	Height        int     `json:"height"`
	LogLikelihood float64 `json:"log_likelihood"`
	BitsPerDim    float64 `json:"bits_per_dim"`
	// Scores holds every score the detector computes (flowood serve
	// --scores; detector.ScoreNames documents each), by name, each
	// higher = more in-distribution: loglik (the log-likelihood), ic,
	// ic_lzma, typicality, lr, waic, general, dose.
	Scores map[string]float64 `json:"scores"`
	// OODBy says, per score with a threshold, whether the image is below
	// it; OOD is OODBy[primary].
	OODBy map[string]bool `json:"ood_by"`
	OOD   bool            `json:"ood"`
}

const convention = "log_likelihood: log p(u) in nats of the dequantised pixels u in [0,1)^D; every score is higher = more " +
	"in-distribution; ood_by[s] = scores[s] < thresholds[s], each threshold calibrated by flowood eval to accept 95% of " +
	"held-out in-distribution data; ood = ood_by[primary]"

// httpError is an error with the status to answer it with.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status, fmt.Sprintf(format, args...)}
}

func (s *Server) score(w http.ResponseWriter, r *http.Request) {
	// Admission first, before reading the body: a full queue costs the
	// server nothing.
	select {
	case s.admit <- struct{}{}:
		defer func() { <-s.admit }()
	default:
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, errorf(http.StatusServiceUnavailable, "busy: %d requests scoring or waiting; retry later", cap(s.admit)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
	defer cancel()
	imgs, err := s.readImages(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	j := &job{ctx: ctx, imgs: images(imgs), done: make(chan jobResult, 1)}
	var res []detector.Result
	select {
	case s.jobs <- j:
		select {
		case out := <-j.done:
			res, err = out.res, out.err
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	var ie *detector.InputError
	switch {
	case errors.As(err, &ie):
		s.fail(w, r, errorf(http.StatusUnprocessableEntity, "image %q: %v", imgs[ie.Index].name, ie.Err))
		return
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this (499, as nginx logs it).
		s.fail(w, r, errorf(499, "client closed the request"))
		return
	case errors.Is(err, context.DeadlineExceeded):
		w.Header().Set("Retry-After", "1")
		s.fail(w, r, errorf(http.StatusServiceUnavailable, "scoring took longer than %s", s.opt.Timeout))
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	out := ScoreResponse{Model: s.det.Model(), Checkpoint: s.det.Checkpoint(), Threshold: s.det.Threshold(),
		Calibrated: s.det.Calibrated(), Primary: s.det.Primary(), Thresholds: s.det.Thresholds(), Convention: convention,
		Results: make([]ImageResult, len(res))}
	for i, v := range res {
		b := imgs[i].img.Bounds()
		out.Results[i] = ImageResult{Name: imgs[i].name, Width: b.Dx(), Height: b.Dy(), LogLikelihood: v.LogLikelihood,
			BitsPerDim: v.BitsPerDim, Scores: v.Scores, OODBy: v.OODBy, OOD: v.OOD}
		s.met.observe(v)
	}
	writeJSON(w, http.StatusOK, out)
}

// namedImage is a decoded image of a request.
type namedImage struct {
	name string
	img  image.Image
}

func images(ns []namedImage) []image.Image {
	out := make([]image.Image, len(ns))
	for i, n := range ns {
		out[i] = n.img
	}
	return out
}

// readImages decodes the request's images: every file part of a
// multipart/form-data body, or the whole body as one image.
func (s *Server) readImages(w http.ResponseWriter, r *http.Request) ([]namedImage, error) {
	body := http.MaxBytesReader(w, r.Body, s.opt.MaxBodyBytes)
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		b, err := readAll(body)
		if err != nil {
			return nil, err
		}
		img, err := s.decode("body", b)
		if err != nil {
			return nil, err
		}
		return []namedImage{img}, nil
	}
	if params["boundary"] == "" {
		return nil, errorf(http.StatusBadRequest, "multipart/form-data without a boundary")
	}
	mr := multipart.NewReader(body, params["boundary"])
	var out []namedImage
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if e := bodyError(err); e != nil {
				return nil, e
			}
			return nil, errorf(http.StatusBadRequest, "reading multipart body: %v", err)
		}
		// Files, and parts that say they are images; other form fields
		// are ignored.
		name := p.FileName()
		if name == "" {
			if !strings.HasPrefix(p.Header.Get("Content-Type"), "image/") {
				continue
			}
			name = p.FormName()
		}
		if len(out) == s.opt.MaxImages {
			return nil, errorf(http.StatusRequestEntityTooLarge, "more than %d images in one request", s.opt.MaxImages)
		}
		b, err := readAll(p)
		if err != nil {
			return nil, err
		}
		img, err := s.decode(name, b)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	if len(out) == 0 {
		return nil, errorf(http.StatusBadRequest, "no images in the multipart body (send PNG or JPEG files as parts)")
	}
	return out, nil
}

// readAll reads r, mapping an over-long body to 413.
func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		if e := bodyError(err); e != nil {
			return nil, e
		}
		return nil, errorf(http.StatusBadRequest, "reading body: %v", err)
	}
	return b, nil
}

// bodyError maps a body over MaxBodyBytes to 413; nil for other errors.
func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return errorf(http.StatusRequestEntityTooLarge, "request body over %d bytes", mb.Limit)
	}
	return nil
}

// decode checks the image's header (format, dimensions) and decodes it.
func (s *Server) decode(name string, b []byte) (namedImage, error) {
	if len(b) == 0 {
		return namedImage{}, errorf(http.StatusBadRequest, "image %q: empty", name)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return namedImage{}, errorf(http.StatusUnsupportedMediaType, "image %q: not a PNG or JPEG image", name)
		}
		return namedImage{}, errorf(http.StatusBadRequest, "image %q: bad %s header: %v", name, format, err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > s.opt.MaxPixels/max(cfg.Height, 1) {
		return namedImage{}, errorf(http.StatusRequestEntityTooLarge, "image %q: %dx%d is over the limit of %d pixels",
			name, cfg.Width, cfg.Height, s.opt.MaxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return namedImage{}, errorf(http.StatusBadRequest, "image %q: decoding %s: %v", name, format, err)
	}
	return namedImage{name, img}, nil
}

// fail answers err: its status for an *httpError, 500 otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	var he *httpError
	if errors.As(err, &he) {
		status = he.status
	}
	s.opt.Logger.Info("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "error", err.Error())
	writeError(w, status, err.Error())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// constantTimeEqual compares without leaking where a and b differ.
func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// NewHTTPServer returns an http.Server for h on addr with timeouts
// against slow clients: headers within 10 s, the whole request within
// readTimeout (default 60 s), idle keep-alive connections closed after
// 2 minutes.
func NewHTTPServer(addr string, h http.Handler, readTimeout time.Duration) *http.Server {
	if readTimeout <= 0 {
		readTimeout = time.Minute
	}
	return &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: readTimeout,
		WriteTimeout: readTimeout + 2*time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
}

// IsLoopback reports whether addr (host:port) binds to loopback only.
func IsLoopback(addr string) bool {
	host := addr
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host = addr[:i]
	}
	host = strings.Trim(host, "[]")
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	return strings.HasPrefix(host, "127.")
}
