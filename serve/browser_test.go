package serve

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser returns the path of a Chromium or Chrome binary, or "" when
// none is installed. FLOWOOD_BROWSER names one explicitly.
func browser() string {
	if p := os.Getenv("FLOWOOD_BROWSER"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestDashboardInBrowser loads the dashboard in headless Chromium: the
// page loads without console errors or exceptions, the histogram and the
// AUROC table render from the run's evaluation, and uploading a real
// MNIST PNG through the file input shows its scores. With
// FLOWOOD_SCREENSHOTS set to a folder it saves screenshots there
// (docs/ holds the ones taken so).
//
// It is skipped when no browser is installed, unless
// FLOWOOD_REQUIRE_BROWSER is set (as .ci/run does, which installs
// Debian's chromium).
func TestDashboardInBrowser(t *testing.T) {
	exe := browser()
	if exe == "" {
		if os.Getenv("FLOWOOD_REQUIRE_BROWSER") != "" {
			t.Fatal("no chromium found and FLOWOOD_REQUIRE_BROWSER is set (apt-get install chromium)")
		}
		t.Skip("no chromium or chrome installed; set FLOWOOD_BROWSER or install Debian's chromium")
	}
	_, _, ts := newTestServer(t, Options{})
	files, _ := mnistPNGs(t, 1)
	upload := filepath.Join(t.TempDir(), "mnist-digit.png")
	if err := os.WriteFile(upload, files[0], 0o644); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1100, 1400))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	defer cancelT()

	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s at %s:%d: %s", m.Type, m.URL, m.Line+1, m.Text))
				mu.Unlock()
			}
		}
	}()
	count := func(sel string) int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+strconv.Quote(sel)+`).length`))
		if err != nil {
			t.Fatalf("counting %s: %v", sel, err)
		}
		return n
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`body[data-loaded="true"]`))); err != nil {
		t.Fatalf("loading the dashboard: %v", err)
	}
	// The run was evaluated on fashionmnist test, train and mnist test.
	series, rows, roc := count("#histogram-svg path.hist-series"), count("#auroc-table tr.auroc-row"), count("#roc svg path")
	// The run was evaluated with 4 scores: a row each for mnist.
	if series != 3 || rows != 4 || roc != 1 {
		t.Errorf("dashboard shows %d histogram series (want 3), %d AUROC rows (want 4: loglik, ic, typicality, dose), %d ROC curves (want 1, mnist)", series, rows, roc)
	}
	if line := text("#run-line"); !strings.Contains(line, "model realnvp") || !strings.Contains(line, "calibrated at 95% TPR") {
		t.Errorf("run line %q", line)
	}
	if cell := text("#auroc-table tr.auroc-row td:nth-child(2)"); !strings.HasPrefix(cell, "0.") && !strings.HasPrefix(cell, "1.") {
		t.Errorf("AUROC cell %q is not a number in [0, 1]", cell)
	}
	shot(t, ctx, "dashboard.png")

	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(`#file`), []string{upload}),
		chromedp.WaitVisible(chromedp.CSS(`tr.upload-row`))); err != nil {
		t.Fatalf("uploading an image: %v", err)
	}
	if verdict := text("tr.upload-row td:nth-child(4)"); verdict != "OOD" && verdict != "in-distribution" {
		t.Errorf("upload verdict %q", verdict)
	}
	// A column per score beyond loglik (the run calibrated ic,
	// typicality and dose), each a number with its decision, and the
	// thresholds in the footer.
	if heads, cells := count("#upload-results th.score-head"), count("tr.upload-row td.score"); heads != 3 || cells != 3 {
		t.Errorf("%d score columns and %d score cells, want 3 (ic, typicality, dose)", heads, cells)
	}
	for k := 5; k <= 7; k++ {
		cell := text(fmt.Sprintf("tr.upload-row td:nth-child(%d)", k))
		f := strings.Fields(cell)
		if _, err := strconv.ParseFloat(strings.ReplaceAll(f[0], "−", "-"), 64); len(f) != 2 || err != nil || (f[1] != "OOD" && f[1] != "in") {
			t.Errorf("score cell %d: %q, want a number and OOD or in", k, cell)
		}
	}
	if foot := text("#upload-results tr.threshold-row"); !strings.Contains(foot, "OOD below") {
		t.Errorf("threshold row %q", foot)
	}
	if marks := count("#histogram-svg line.upload-mark"); marks != 1 {
		t.Errorf("%d upload marks on the histogram, want 1", marks)
	}
	shot(t, ctx, "dashboard-upload.png")
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}

// shot saves a full-page screenshot to $FLOWOOD_SCREENSHOTS/name.
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("FLOWOOD_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Errorf("screenshot: %v", err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Error(err)
	}
}
