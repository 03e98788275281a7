package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/flowood/flowood/detector"
	"github.com/flowood/flowood/serve"
)

var serveCmd = &command{
	UsageLine: "serve RUN [--addr 127.0.0.1:8080] [--token T | --insecure] [--workers N] [--queue N] [--timeout 30s] [--max-body BYTES] [--max-pixels N] [--scores loglik,ic,...] [--primary SCORE] [--complexity=false]",
	Short:     "serve the run's detector over HTTP (POST /v1/score, /healthz, /metrics) with a dashboard at /",
	Run:       runServe,
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on; an address other than loopback needs --token or --insecure")
	token := fs.String("token", "", "require \"Authorization: Bearer TOKEN\" on every route but /healthz")
	insecure := fs.Bool("insecure", false, "allow a non-loopback --addr without --token")
	workers := fs.Int("workers", 0, "requests scored at once (0: GOMAXPROCS)")
	queue := fs.Int("queue", 0, "requests that may wait for a worker before 503 (0: 128)")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline of one scoring request, waiting included")
	maxBody := fs.Int64("max-body", 32<<20, "largest request body in bytes")
	maxPixels := fs.Int("max-pixels", 4096*4096, "largest image, width x height, checked before decoding")
	scores := fs.String("scores", "", "scores to compute per image, from "+strings.Join(detector.ScoreNames, ",")+
		" (default: every score flowood eval calibrated for the run; lr, waic, general and dose need that calibration)")
	primary := fs.String("primary", "loglik", "the score whose threshold decides each image's ood")
	complexity := fs.Bool("complexity", true, "also score each image's input complexity ic (log p + PNG bits ln 2): the score that detects MNIST under a FashionMNIST flow; with --scores, only when given explicitly")
	grace := fs.Duration("grace", 30*time.Second, "on SIGTERM or Ctrl-C, time given to requests in flight before closing")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("serve: want exactly one run folder, got %d arguments", len(pos))
	}
	switch {
	case *workers < 0 || *queue < 0:
		return fmt.Errorf("serve: --workers %d and --queue %d must not be negative", *workers, *queue)
	case *timeout <= 0 || *maxBody <= 0 || *maxPixels <= 0:
		return fmt.Errorf("serve: --timeout, --max-body and --max-pixels must be positive")
	case !serve.IsLoopback(*addr) && *token == "" && !*insecure:
		return fmt.Errorf("serve: --addr %s is not loopback: anyone who reaches it could use the detector; give --token T (clients send Authorization: Bearer T) or --insecure", *addr)
	}
	run := pos[0]
	dopt := detector.Options{Complexity: *complexity, Primary: *primary}
	if *scores != "" {
		dopt.Scores = strings.Split(*scores, ",")
		// --scores is the list; --complexity adds ic to it only when given.
		dopt.Complexity = false
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "complexity" {
				dopt.Complexity = *complexity
			}
		})
	}
	det, err := detector.LoadWith(run, dopt)
	if err != nil && *scores != "" {
		return fmt.Errorf("serve: --scores %s: %w", *scores, err)
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	h := serve.New(run, det, serve.Options{MaxBodyBytes: *maxBody, MaxPixels: *maxPixels, Workers: *workers,
		Queue: *queue, Timeout: *timeout, Token: *token, Logger: logger})
	defer h.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := serve.NewHTTPServer(*addr, h, 0)
	calibrated := "calibrated"
	if !det.Calibrated() {
		calibrated = "not calibrated (run flowood eval)"
	}
	fmt.Fprintf(stdout, "serving %s (%s, checkpoint %s, threshold %.6g nats, %s) on http://%s: dashboard /, POST /v1/score, /healthz, /metrics\n",
		run, det.Model(), det.Checkpoint(), det.Threshold(), calibrated, ln.Addr())
	thr := det.Thresholds()
	var desc []string
	for _, name := range det.Scores() {
		if t, ok := thr[name]; ok {
			desc = append(desc, fmt.Sprintf("%s (OOD below %.6g)", name, t))
		} else {
			desc = append(desc, name+" (no threshold)")
		}
	}
	fmt.Fprintf(stdout, "scores: %s; ood decided by %s\n", strings.Join(desc, ", "), det.Primary())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintf(stdout, "shutting down: finishing requests in flight (up to %s)\n", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stdout, "stopped")
	return nil
}
