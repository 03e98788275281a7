package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowood/flowood/detector"
)

// envInt returns the integer in environment variable name, or def.
func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// peakRSS returns the process's peak resident set (VmHWM) in MiB, or 0
// where /proc is not there.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// TestLoad runs FLOWOOD_LOAD_CLIENTS clients (default 100) posting real
// MNIST PNGs to a server on a loopback listener for FLOWOOD_LOAD_SECONDS
// (default 2), with the queue above the number of clients: every
// request must get 200 (no 5xx, no refusal). It logs the throughput,
// the latency percentiles and the peak RSS of the process (server and
// clients together); docs/serve.md records runs of it.
func TestLoad(t *testing.T) {
	clients := envInt(t, "FLOWOOD_LOAD_CLIENTS", 100)
	seconds := envInt(t, "FLOWOOD_LOAD_SECONDS", 2)
	run := testRun(t)
	det, err := detector.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(run, det, Options{Queue: clients + 8})
	defer s.Close()
	srv := NewHTTPServer(ln.Addr().String(), s, 0)
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/v1/score"
	files, imgs := mnistPNGs(t, 16)
	// Requests are grouped into batches by the server (batcher.go): each
	// response must still carry its image's own score, bit for bit.
	want, err := det.Score(context.Background(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	wrong := 0

	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()
	var mu sync.Mutex
	var lat []time.Duration
	codes := map[int]int{}
	var errs []error
	stop := time.Now().Add(time.Duration(seconds) * time.Second)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				start := time.Now()
				k := (c + i) % len(files)
				resp, err := client.Post(url, "image/png", bytes.NewReader(files[k]))
				d := time.Since(start)
				var sr ScoreResponse
				if err == nil {
					json.NewDecoder(resp.Body).Decode(&sr)
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					codes[resp.StatusCode]++
					lat = append(lat, d)
					if resp.StatusCode == 200 && (len(sr.Results) != 1 || sr.Results[0].LogLikelihood != want[k].LogLikelihood) {
						wrong++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(stop.Add(-time.Duration(seconds) * time.Second))
	for _, err := range errs[:min(len(errs), 5)] {
		t.Errorf("request failed: %v", err)
	}
	for code, n := range codes {
		if code != 200 {
			t.Errorf("%d responses with status %d", n, code)
		}
	}
	if len(lat) == 0 {
		t.Fatal("no request completed")
	}
	if wrong > 0 {
		t.Errorf("%d responses did not carry their image's score (as the detector gives it alone)", wrong)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("%d clients, %s: %d requests (%.1f req/s), status counts %v, latency p50 %s p99 %s max %s, peak RSS %.0f MiB",
		clients, elapsed.Round(time.Millisecond), len(lat), float64(len(lat))/elapsed.Seconds(), codes,
		pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), peakRSS())
}
