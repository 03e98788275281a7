package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLine(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "train", 100, "img")
	t0 := b.start
	got := b.Line(25, 250, "loss 3.2", t0.Add(10*time.Second))
	// 25% after 10s leaves 30s; 250 img in 10s is 25 img/s.
	for _, want := range []string{"25%", "25/100", "25.0 img/s", "ETA 30s", "loss 3.2"} {
		if !strings.Contains(got, want) {
			t.Errorf("line %q lacks %q", got, want)
		}
	}
	if got := b.Line(100, 1000, "", t0.Add(90*time.Second)); !strings.Contains(got, "done in 1m30s") {
		t.Errorf("final line %q lacks the total time", got)
	}
}

func TestUpdateThrottles(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", 10, "it")
	now := b.start
	b.now = func() time.Time { return now }
	b.Update(1, 1, "")
	now = now.Add(time.Second)
	b.Update(2, 2, "") // within 10s of the last line on a non-terminal
	b.Update(10, 10, "")
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Errorf("printed %d lines, want 2 (first, throttled, final):\n%s", n, buf.String())
	}
}

func TestResumedETA(t *testing.T) {
	b := New(nil, "train", 100, "img")
	b.Start = 50
	// 10 steps since the start took 10s: 40 left take 40s.
	if got := b.Line(60, 10, "", b.start.Add(10*time.Second)); !strings.Contains(got, "ETA 40s") {
		t.Errorf("resumed line %q, want ETA 40s", got)
	}
}
