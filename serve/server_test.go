package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowood/flowood/data"
	"github.com/flowood/flowood/detector"
	"github.com/flowood/flowood/experiment"
)

var (
	runOnce sync.Once
	runDir  string
	runErr  error
)

// testRun trains a tiny RealNVP on the embedded FashionMNIST for a few
// steps and evaluates it against the embedded MNIST (flowood train and
// flowood eval, through package experiment), once for the package's
// tests: a run folder as a user's looks, with the scores that need no
// other run (ic, typicality, dose) calibrated.
func testRun(t *testing.T) string {
	t.Helper()
	runOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowood-serve-test-")
		if err != nil {
			runErr = err
			return
		}
		runDir = filepath.Join(dir, "run")
		rc, err := experiment.NewRunConfig("realnvp", "tiny", "fashionmnist")
		if err != nil {
			runErr = err
			return
		}
		rc.Data.Embedded = true
		rc.Train.MaxSteps = 4
		rc.Train.TestLimit = 64
		if runErr = rc.Resolve(); runErr != nil {
			return
		}
		if _, runErr = experiment.Train(context.Background(), rc, runDir, experiment.TrainOptions{}); runErr != nil {
			return
		}
		_, runErr = experiment.Evaluate(context.Background(), runDir, experiment.EvalOptions{OOD: []string{"mnist"}, Limit: 200,
			Scores: []string{"ic", "typicality", "dose"}})
	})
	if runErr != nil {
		t.Fatalf("making the test run: %v", runErr)
	}
	return runDir
}

// mnistPNGs returns the first n embedded MNIST test images as PNG files
// and as decoded images.
func mnistPNGs(t *testing.T, n int) ([][]byte, []image.Image) {
	t.Helper()
	im, err := data.Load("mnist", "test", data.Options{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	var files [][]byte
	var imgs []image.Image
	for i := range n {
		g := image.NewGray(image.Rect(0, 0, im.W, im.H))
		copy(g.Pix, im.Pix[i*im.H*im.W:(i+1)*im.H*im.W])
		var b bytes.Buffer
		if err := png.Encode(&b, g); err != nil {
			t.Fatal(err)
		}
		files = append(files, b.Bytes())
		imgs = append(imgs, g)
	}
	return files, imgs
}

func newTestServer(t *testing.T, opt Options) (*Server, *detector.Detector, *httptest.Server) {
	t.Helper()
	run := testRun(t)
	det, err := detector.LoadWith(run, detector.Options{Complexity: true})
	if err != nil {
		t.Fatal(err)
	}
	s := New(run, det, opt)
	ts := httptest.NewServer(s)
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, det, ts
}

// multipartBody returns a multipart/form-data body with the given files.
func multipartBody(t *testing.T, files map[string][]byte) (io.Reader, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for name, f := range files {
		w, err := mw.CreateFormFile("image", name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f)
	}
	mw.Close()
	return &b, mw.FormDataContentType()
}

func post(t *testing.T, url, ctype string, body io.Reader) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, ctype, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("POST %s: status %d, body not JSON: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode, v
}

// TestScore checks that /v1/score gives, for real MNIST PNGs sent as a
// raw body or as multipart files, the scores the detector gives the
// decoded images directly, and the verdict against its threshold.
func TestScore(t *testing.T) {
	_, det, ts := newTestServer(t, Options{})
	files, imgs := mnistPNGs(t, 3)
	want, err := det.Score(context.Background(), imgs)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got ScoreResponse, idx []int) {
		t.Helper()
		if len(got.Results) != len(idx) {
			t.Fatalf("%s: %d results, want %d", what, len(got.Results), len(idx))
		}
		for k, i := range idx {
			r := got.Results[k]
			if r.LogLikelihood != want[i].LogLikelihood || r.BitsPerDim != want[i].BitsPerDim || r.OOD != want[i].OOD {
				t.Errorf("%s: image %d scored %+v, the detector gives %+v", what, i, r, want[i])
			}
			if r.OOD != (r.LogLikelihood < got.Threshold) || r.Scores["loglik"] != r.LogLikelihood || r.Width != 28 ||
				r.Scores["ic"] != want[i].Complexity || r.Scores["typicality"] != want[i].Typicality {
				t.Errorf("%s: result %+v inconsistent with threshold %v", what, r, got.Threshold)
			}
			// every score the run calibrated, the detector's value, and
			// its decision against its threshold
			for _, name := range []string{"loglik", "ic", "typicality", "dose"} {
				v, ok := r.Scores[name]
				thr, has := got.Thresholds[name]
				if !ok || !has || v != want[i].Scores[name] || r.OODBy[name] != (v < thr) {
					t.Errorf("%s: image %d: %s %v (%v), the detector's %v; threshold %v (%v); ood_by %v", what, i, name, v, ok,
						want[i].Scores[name], thr, has, r.OODBy)
				}
			}
			if len(r.Scores) != 4 || r.OOD != r.OODBy[got.Primary] || got.Primary != "loglik" {
				t.Errorf("%s: image %d: scores %v, ood %v, primary %s", what, i, r.Scores, r.OOD, got.Primary)
			}
		}
		if !got.Calibrated || got.Model != "realnvp" {
			t.Errorf("%s: model %q calibrated %v, want realnvp, calibrated by flowood eval", what, got.Model, got.Calibrated)
		}
	}
	decode := func(resp *http.Response) ScoreResponse {
		t.Helper()
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		var sr ScoreResponse
		if err := json.NewDecoder(resp.Body).Decode(&sr); err != nil {
			t.Fatal(err)
		}
		return sr
	}
	resp, err := http.Post(ts.URL+"/v1/score", "image/png", bytes.NewReader(files[1]))
	if err != nil {
		t.Fatal(err)
	}
	check("raw body", decode(resp), []int{1})

	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i, f := range files {
		w, _ := mw.CreateFormFile("image", fmt.Sprintf("digit%d.png", i))
		w.Write(f)
	}
	mw.WriteField("note", "a form field that is not a file is ignored")
	mw.Close()
	resp, err = http.Post(ts.URL+"/v1/score", mw.FormDataContentType(), &b)
	if err != nil {
		t.Fatal(err)
	}
	sr := decode(resp)
	check("multipart", sr, []int{0, 1, 2})
	if sr.Results[2].Name != "digit2.png" {
		t.Errorf("multipart result 2 named %q, want digit2.png", sr.Results[2].Name)
	}
}

// pngHeader returns the signature and IHDR chunk of a w x h 8-bit
// grayscale PNG, with a valid CRC, and no image data: what a
// decompression bomb's first bytes look like.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8] = 8 // bit depth; colour type 0 (gray)
	binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// TestBadRequests checks that each malformed or hostile request gets its
// 4xx with a JSON error naming the problem, and that the server answers
// a good request afterwards.
func TestBadRequests(t *testing.T) {
	_, _, ts := newTestServer(t, Options{MaxBodyBytes: 1 << 20})
	files, _ := mnistPNGs(t, 1)
	var small bytes.Buffer
	png.Encode(&small, image.NewGray(image.Rect(0, 0, 3, 3)))
	noFiles, noFilesType := func() (io.Reader, string) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		mw.WriteField("note", "no image")
		mw.Close()
		return &b, mw.FormDataContentType()
	}()
	for _, c := range []struct {
		name   string
		ctype  string
		body   io.Reader
		status int
		want   string
	}{
		{"text", "text/plain", strings.NewReader("hello, not an image"), 415, "not a PNG or JPEG"},
		{"empty", "image/png", strings.NewReader(""), 400, "empty"},
		{"truncated PNG", "image/png", bytes.NewReader(files[0][:len(files[0])/2]), 400, "decoding png"},
		{"50000x50000 header", "image/png", bytes.NewReader(pngHeader(50000, 50000)), 413, "50000x50000 is over the limit"},
		{"body over the limit", "image/png", bytes.NewReader(make([]byte, 2<<20)), 413, "over 1048576 bytes"},
		{"3x3 image", "image/png", &small, 422, "image is 3x3"},
		{"multipart without files", noFilesType, noFiles, 400, "no images"},
		{"multipart without boundary", "multipart/form-data", strings.NewReader("x"), 400, "boundary"},
	} {
		status, v := post(t, ts.URL+"/v1/score", c.ctype, c.body)
		msg, _ := v["error"].(string)
		if status != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("%s: status %d error %q, want %d and an error containing %q", c.name, status, msg, c.status, c.want)
		}
	}
	resp, err := http.Get(ts.URL + "/v1/score")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/score: status %d, want 405", resp.StatusCode)
	}
	if status, v := post(t, ts.URL+"/v1/score", "image/png", bytes.NewReader(files[0])); status != 200 {
		t.Errorf("a good request after the bad ones: status %d %v", status, v)
	}
}

// TestMetricsAndHealth checks /healthz and that /metrics counts good and
// bad requests and the images scored.
func TestMetricsAndHealth(t *testing.T) {
	_, _, ts := newTestServer(t, Options{})
	files, _ := mnistPNGs(t, 2)
	body, ctype := multipartBody(t, map[string][]byte{"a.png": files[0], "b.png": files[1]})
	if status, v := post(t, ts.URL+"/v1/score", ctype, body); status != 200 {
		t.Fatalf("status %d %v", status, v)
	}
	if status, _ := post(t, ts.URL+"/v1/score", "text/plain", strings.NewReader("garbage")); status != 415 {
		t.Fatalf("garbage: status %d, want 415", status)
	}
	get := func(path string) string {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		return string(b)
	}
	if h := get("/healthz"); h != "ok\n" {
		t.Errorf("/healthz: %q", h)
	}
	m := get("/metrics")
	for _, want := range []string{
		`flowood_http_requests_total{code="200",handler="score",method="post"} 1`,
		`flowood_http_requests_total{code="415",handler="score",method="post"} 1`,
		`flowood_score_bits_per_dim_count 2`,
		`flowood_http_request_duration_seconds_count{handler="score"} 2`,
		`flowood_score_count{score="loglik"} 2`,
		`flowood_score_count{score="ic"} 2`,
		`flowood_score_count{score="typicality"} 2`,
		`flowood_score_count{score="dose"} 2`,
		`# TYPE flowood_images_ood_total counter`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	in, ood := strings.Contains(m, `flowood_images_scored_total{verdict="in"}`), strings.Contains(m, `flowood_images_scored_total{verdict="ood"}`)
	if !in && !ood {
		t.Errorf("/metrics counts no scored images")
	}
}

// TestToken checks the bearer token: required everywhere but /healthz.
func TestToken(t *testing.T) {
	_, _, ts := newTestServer(t, Options{Token: "s3cret"})
	files, _ := mnistPNGs(t, 1)
	do := func(path, auth string, body []byte) int {
		method := "GET"
		if body != nil {
			method = "POST"
		}
		req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path, auth string
		body       []byte
		want       int
	}{
		{"/v1/score", "", files[0], 401},
		{"/v1/score", "Bearer wrong", files[0], 401},
		{"/metrics", "", nil, 401},
		{"/healthz", "", nil, 200},
		{"/v1/score", "Bearer s3cret", files[0], 200},
	} {
		if got := do(c.path, c.auth, c.body); got != c.want {
			t.Errorf("%s with %q: status %d, want %d", c.path, c.auth, got, c.want)
		}
	}
}

// TestQueueFull checks admission: with one worker and one waiting place,
// two requests whose bodies are still arriving hold both, and a third is
// refused at once with 503 and Retry-After; once they finish, requests
// are served again.
func TestQueueFull(t *testing.T) {
	srv, _, ts := newTestServer(t, Options{Workers: 1, Queue: 1})
	files, _ := mnistPNGs(t, 1)
	var wg sync.WaitGroup
	release := make(chan struct{})
	statuses := make([]int, 2)
	for i := range 2 {
		pr, pw := io.Pipe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(ts.URL+"/v1/score", "image/png", pr)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		}()
		go func() {
			pw.Write(files[0][:10])
			<-release
			pw.Write(files[0][10:])
			pw.Close()
		}()
	}
	// wait until both slow requests are admitted
	for deadline := time.Now().Add(10 * time.Second); len(srv.admit) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the two slow requests were not admitted within 10 s (%d were)", len(srv.admit))
		}
	}
	resp, err := http.Post(ts.URL+"/v1/score", "image/png", bytes.NewReader(files[0]))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	status := resp.StatusCode
	if status != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("third request with the queue full: status %d Retry-After %q, want 503 with Retry-After", status, resp.Header.Get("Retry-After"))
	}
	close(release)
	wg.Wait()
	if statuses[0] != 200 || statuses[1] != 200 {
		t.Errorf("the two admitted requests: statuses %v, want 200 200", statuses)
	}
	if s, _ := post(t, ts.URL+"/v1/score", "image/png", bytes.NewReader(files[0])); s != 200 {
		t.Errorf("after the queue drained: status %d", s)
	}
}

// TestHostileConnections checks, on a real listener with the timeouts of
// NewHTTPServer (shortened), that a 1 GB body is cut off with 413 after
// the body limit and that a slow (slowloris) body is dropped at the read
// timeout, while normal requests keep being answered.
func TestHostileConnections(t *testing.T) {
	run := testRun(t)
	det, err := detector.Load(run)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(run, det, Options{MaxBodyBytes: 1 << 20})
	defer s.Close()
	srv := NewHTTPServer(ln.Addr().String(), s, time.Second)
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	files, _ := mnistPNGs(t, 1)
	good := func() {
		t.Helper()
		if s, v := post(t, "http://"+addr+"/v1/score", "image/png", bytes.NewReader(files[0])); s != 200 {
			t.Errorf("normal request beside a hostile one: status %d %v", s, v)
		}
	}

	// 1 GB announced, 2 MB sent: the answer is 413 without the rest.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", 1<<30)
	go c.Write(make([]byte, 2<<20))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line := make([]byte, 12)
	if _, err := io.ReadFull(c, line); err != nil || string(line) != "HTTP/1.1 413" {
		t.Errorf("1 GB body: response %q (%v), want HTTP/1.1 413", line, err)
	}
	c.Close()
	good()

	// Slowloris: headers, then a byte now and then; the server closes
	// the connection after its read timeout (1 s here).
	c, err = net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 1000\r\n\r\n")
	start := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		io.Copy(io.Discard, c) // returns when the server closes
		closed <- time.Since(start)
	}()
	good()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-closed:
			if d > 5*time.Second {
				t.Errorf("slow body: connection closed after %s, want about the 1 s read timeout", d)
			}
			good()
			return
		case <-tick.C:
			c.Write([]byte{0})
		case <-time.After(10 * time.Second):
			t.Fatal("slow body: the server kept the connection open for 10 s")
		}
	}
}
