package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperProcess is not a test: run by startFlowood in a subprocess
// (FLOWOOD_HELPER_PROCESS=1), it is the flowood command, main included,
// with the arguments after "--".
func TestHelperProcess(t *testing.T) {
	if os.Getenv("FLOWOOD_HELPER_PROCESS") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Args = append([]string{"flowood"}, args...)
	main() // exits 1 on error
	os.Exit(0)
}

// startFlowood starts the flowood command in a subprocess (this test
// binary re-executed as TestHelperProcess).
func startFlowood(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "FLOWOOD_HELPER_PROCESS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// runFlowood runs the flowood command in a subprocess to the end.
func runFlowood(t *testing.T, args ...string) string {
	t.Helper()
	cmd, out := startFlowood(t, args...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("flowood %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out.String()
}

// savedState is the part of a checkpoint's state.json the tests look at.
type savedState struct {
	Step         int `json:"step"`
	Epoch        int `json:"epoch"`
	BatchInEpoch int `json:"batch_in_epoch"`
}

// readState reads RUN/checkpoint/latest/state.json; ok is false while
// there is none (or it is being replaced).
func readState(run string) (savedState, bool) {
	b, err := os.ReadFile(filepath.Join(run, "checkpoint", "latest", "state.json"))
	if err != nil {
		return savedState{}, false
	}
	var s savedState
	return s, json.Unmarshal(b, &s) == nil
}

// tinyTrainArgs trains the tiny preset on embedded data for 30 steps of
// 8 images: one epoch of 20 steps (with its evaluation) and 10 steps of
// the next.
var tinyTrainArgs = []string{"train", "--preset", "tiny", "--embedded", "--batch", "8", "--train-limit", "160",
	"--test-limit", "16", "--epochs", "2", "--max-steps", "30", "--seed", "7"}

// sameFile reports whether the files at a and b have the same bytes.
func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// TestInterruptResume checks, against an uninterrupted run, that a run
// killed with SIGKILL between periodic checkpoints or stopped by SIGTERM,
// then resumed, ends with the same weights, byte for byte; and that
// resuming a finished run says so, trains nothing and changes nothing.
func TestInterruptResume(t *testing.T) {
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	runFlowood(t, append(tinyTrainArgs, "--out", straight)...)
	t.Run("SIGKILL", func(t *testing.T) { testKillResume(t, straight, filepath.Join(dir, "killed")) })
	t.Run("SIGTERM", func(t *testing.T) { testTermResume(t, straight, filepath.Join(dir, "terminated")) })
	t.Run("finished", func(t *testing.T) { testResumeFinished(t, straight) })
}

// sameCheckpoints checks that run's checkpoints have the same bytes as those of
// the uninterrupted run straight.
func sameCheckpoints(t *testing.T, straight, run string) {
	t.Helper()
	for _, f := range []string{"latest/model.safetensors", "latest/optimizer.safetensors", "best/model.safetensors"} {
		if !sameFile(t, filepath.Join(straight, "checkpoint", f), filepath.Join(run, "checkpoint", f)) {
			t.Errorf("%s differs between the uninterrupted and the interrupted and resumed run", f)
		}
	}
}

// testKillResume is issue 10's check: a training run killed with SIGKILL
// mid-epoch, after a periodic checkpoint (--checkpoint-every) and between
// two, then resumed, ends with the same final weights, byte for byte, as
// an uninterrupted run.
func testKillResume(t *testing.T, straight, killed string) {
	cmd, out := startFlowood(t, append(tinyTrainArgs, "--checkpoint-every", "50ms", "--out", killed)...)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var at savedState
	deadline := time.Now().Add(time.Minute)
wait:
	for {
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before a periodic checkpoint mid-epoch; output:\n%s", err, out)
		default:
		}
		if s, ok := readState(killed); ok && s.Step >= 3 && s.BatchInEpoch > 0 {
			at = s
			break wait
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no periodic checkpoint after a minute; output:\n%s", out)
		}
		time.Sleep(2 * time.Millisecond)
	}
	// let it train on past the checkpoint, then kill it
	time.Sleep(30 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the run was not killed by SIGKILL (it ended: %v); output:\n%s", err, out)
	}
	s, ok := readState(killed)
	if !ok || s.Step >= 30 || s.Step < at.Step {
		t.Fatalf("after the kill, the latest checkpoint is %+v (ok %v), want one mid-run", s, ok)
	}
	t.Logf("killed after a checkpoint at step %d (epoch %d, batch %d); latest checkpoint at step %d (epoch %d, batch %d)",
		at.Step, at.Epoch, at.BatchInEpoch, s.Step, s.Epoch, s.BatchInEpoch)

	res := runFlowood(t, "train", "--out", killed, "--resume")
	if !strings.Contains(res, "trained 30 steps") {
		t.Errorf("resumed run says:\n%s", res)
	}
	sameCheckpoints(t, straight, killed)
}

// testTermResume sends SIGTERM to a training run with no periodic
// checkpoints: it must stop within seconds, saving a checkpoint first,
// and resumed end as the uninterrupted run.
func testTermResume(t *testing.T, straight, run string) {
	cmd, out := startFlowood(t, append(tinyTrainArgs, "--checkpoint-every", "off", "--out", run)...)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before it could be stopped; output:\n%s", err, out)
		default:
		}
		if _, err := os.Stat(filepath.Join(run, "train-log.csv")); err == nil {
			break // training has started
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 30 s after SIGTERM; output:\n%s", out)
	}
	t.Logf("stopped %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 || !strings.Contains(out.String(), "interrupted; the latest checkpoint is saved") {
		t.Fatalf("after SIGTERM: %v; output:\n%s", err, out)
	}
	s, ok := readState(run)
	if !ok || s.Step == 0 || s.Step >= 30 {
		t.Fatalf("after SIGTERM the latest checkpoint is %+v (ok %v), want one mid-run", s, ok)
	}
	t.Logf("checkpoint saved on SIGTERM at step %d (epoch %d, batch %d)", s.Step, s.Epoch, s.BatchInEpoch)
	runFlowood(t, "train", "--out", run, "--resume")
	sameCheckpoints(t, straight, run)
}

// testResumeFinished resumes the finished run straight: it must say it is
// finished, with its test bits/dim (no NaN), exit 0 and change no file.
func testResumeFinished(t *testing.T, straight string) {
	files := map[string][]byte{}
	for _, f := range []string{"train-log.csv", "checkpoint/latest/state.json", "checkpoint/latest/model.safetensors"} {
		b, err := os.ReadFile(filepath.Join(straight, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = b
	}
	out := runFlowood(t, "train", "--out", straight, "--resume")
	if !strings.Contains(out, "already finished: 30 steps, 1 of 2 epochs complete, max steps 30; test bits/dim ") || strings.Contains(out, "NaN") {
		t.Errorf("resuming a finished run says:\n%s", out)
	}
	for f, b := range files {
		if now, err := os.ReadFile(filepath.Join(straight, f)); err != nil || !bytes.Equal(now, b) {
			t.Errorf("%s changed (%v)", f, err)
		}
	}
}
