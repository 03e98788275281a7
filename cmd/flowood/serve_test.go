package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flowood/flowood/data"
)

// TestServe runs `flowood serve` on a tiny trained and evaluated run, as
// a user would: it answers a real MNIST PNG and a non-image, /metrics
// counts both, and SIGTERM lets a request in flight finish before the
// process exits 0. A non-loopback address without --token is refused.
func TestServe(t *testing.T) {
	if _, _, err := runCLI(t, "serve", "nowhere", "--addr", "0.0.0.0:8080"); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Errorf("serve on 0.0.0.0 without --token: %v, want an error naming --token", err)
	}
	run := filepath.Join(t.TempDir(), "run")
	if _, stderr, err := runCLI(t, "train", "--data", "fashionmnist", "--preset", "tiny", "--embedded", "--max-steps", "3",
		"--batch", "16", "--train-limit", "64", "--test-limit", "32", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	if _, stderr, err := runCLI(t, "eval", run, "--ood", "mnist", "--limit", "40", "--score", "ic,typicality"); err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	// A score that needs a reference run eval did not use: a clear error.
	if _, _, err := runCLI(t, "serve", run, "--scores", "loglik,lr"); err == nil || !strings.Contains(err.Error(), "score lr needs") ||
		!strings.Contains(err.Error(), "flowood eval --score lr") {
		t.Errorf("serve --scores lr without a calibrated lr: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "--", "serve", run, "--addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "FLOWOOD_HELPER_PROCESS=1")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	addrRE := regexp.MustCompile(`on http://(127\.0\.0\.1:\d+)`)
	var base string
	for deadline := time.Now().Add(60 * time.Second); base == ""; time.Sleep(50 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(out.String()); m != nil {
			base = "http://" + m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", out)
		}
	}

	im, err := data.Load("mnist", "test", data.Options{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	g := image.NewGray(image.Rect(0, 0, 28, 28))
	copy(g.Pix, im.Pix[:28*28])
	var digit bytes.Buffer
	png.Encode(&digit, g)
	resp, err := http.Post(base+"/v1/score", "image/png", bytes.NewReader(digit.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var sr struct {
		Results []struct {
			LogLikelihood float64            `json:"log_likelihood"`
			OOD           bool               `json:"ood"`
			Scores        map[string]float64 `json:"scores"`
			OODBy         map[string]bool    `json:"ood_by"`
		} `json:"results"`
		Threshold  float64            `json:"threshold"`
		Thresholds map[string]float64 `json:"thresholds"`
	}
	json.NewDecoder(resp.Body).Decode(&sr)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(sr.Results) != 1 || sr.Results[0].OOD != (sr.Results[0].LogLikelihood < sr.Threshold) {
		t.Fatalf("POST a MNIST PNG: status %d, %+v", resp.StatusCode, sr)
	}
	// every score eval calibrated, each with its decision
	for _, name := range []string{"loglik", "ic", "typicality"} {
		v, ok := sr.Results[0].Scores[name]
		if thr, has := sr.Thresholds[name]; !ok || !has || sr.Results[0].OODBy[name] != (v < thr) {
			t.Errorf("score %s: %v (%v), threshold %v (%v), ood_by %v", name, v, ok, thr, has, sr.Results[0].OODBy)
		}
	}
	resp, err = http.Post(base+"/v1/score", "application/octet-stream", strings.NewReader("not an image"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("POST a non-image: status %d, want 415", resp.StatusCode)
	}
	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`code="200",handler="score"`, `code="415",handler="score"`} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A request whose body is still arriving when SIGTERM comes finishes.
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		resp, err := http.Post(base+"/v1/score", "image/png", pr)
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	pw.Write(digit.Bytes()[:20])
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	pw.Write(digit.Bytes()[20:])
	pw.Close()
	if status := <-done; status != 200 {
		t.Errorf("request in flight at SIGTERM: status %d, want 200", status)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v, want exit 0\n%s", err, out)
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("serve output lacks the shutdown:\n%s", out)
	}
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
