package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGlowTrainEval trains a tiny Glow through the command line (the
// issue's flowood train --model glow --preset tiny --data fashionmnist
// --embedded, shortened) and scores MNIST against it with flowood eval.
func TestGlowTrainEval(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if _, stderr, err := runCLI(t, "train", "--model", "glow", "--preset", "tiny", "--data", "fashionmnist",
		"--embedded", "--max-steps", "20", "--train-limit", "640", "--test-limit", "64", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	var cfg struct {
		Train struct {
			Warmup int `json:"warmup"`
		} `json:"train"`
	}
	b, err := os.ReadFile(filepath.Join(run, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Train.Warmup <= 0 {
		t.Errorf("config.json of a glow run: warmup %d (%v), want the preset's warm-up", cfg.Train.Warmup, err)
	}
	stdout, stderr, err := runCLI(t, "eval", run, "--ood", "mnist", "--limit", "64")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "mnist test (OOD)") || !strings.Contains(stdout, "AUROC") {
		t.Errorf("eval table:\n%s", stdout)
	}
	var met struct {
		OOD map[string]struct {
			AUROC float64
		} `json:"ood"`
	}
	b, err = os.ReadFile(filepath.Join(run, "eval", "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &met); err != nil {
		t.Fatal(err)
	}
	if r, ok := met.OOD["mnist"]; !ok || math.IsNaN(r.AUROC) || r.AUROC < 0 || r.AUROC > 1 {
		t.Errorf("metrics.json ood[mnist] = %+v (present %v)", r, ok)
	}
}

// TestGlowWarmupFlag checks --warmup: it overrides the preset's warm-up,
// 0 turns it off, and a negative value other than -1 is refused.
func TestGlowWarmupFlag(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	if _, stderr, err := runCLI(t, "train", "--model", "glow", "--preset", "tiny", "--embedded", "--max-steps", "2",
		"--train-limit", "64", "--test-limit", "16", "--warmup", "0", "--out", run); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(filepath.Join(run, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"warmup"`) {
		t.Errorf("--warmup 0 left a warm-up in config.json:\n%s", b)
	}
	if _, _, err := runCLI(t, "train", "--model", "glow", "--preset", "tiny", "--embedded", "--warmup", "-5",
		"--out", filepath.Join(t.TempDir(), "bad")); err == nil {
		t.Error("--warmup -5 accepted")
	}
}

// glowTrainArgs trains a tiny Glow on embedded data for 30 steps of 8
// images, as tinyTrainArgs does RealNVP: one epoch of 20 steps and 10 of
// the next; the warm-up (10 steps) ends after the first checkpoints.
var glowTrainArgs = []string{"train", "--model", "glow", "--preset", "tiny", "--embedded", "--batch", "8", "--train-limit", "160",
	"--test-limit", "16", "--epochs", "2", "--max-steps", "30", "--seed", "7", "--warmup", "25"}

// TestGlowKillResume checks that a Glow run killed with SIGKILL mid-epoch
// between periodic checkpoints, then resumed, ends with the same weights,
// byte for byte, as an uninterrupted run: the actnorms' initialisation
// comes back from the checkpoint (initialising them again on the resumed
// run's first batch would change every later step), and so does the
// position in the learning-rate warm-up.
func TestGlowKillResume(t *testing.T) {
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	runFlowood(t, append(glowTrainArgs, "--out", straight)...)
	killed := filepath.Join(dir, "killed")
	cmd, out := startFlowood(t, append(glowTrainArgs, "--checkpoint-every", "20ms", "--out", killed)...)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before a periodic checkpoint mid-epoch; output:\n%s", err, out)
		default:
		}
		if s, ok := readState(killed); ok && s.Step >= 3 && s.BatchInEpoch > 0 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no periodic checkpoint after a minute; output:\n%s", out)
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the run was not killed by SIGKILL (it ended: %v); output:\n%s", err, out)
	}
	s, ok := readState(killed)
	if !ok || s.Step >= 30 || s.Step == 0 {
		t.Fatalf("after the kill, the latest checkpoint is %+v (ok %v), want one mid-run", s, ok)
	}
	t.Logf("killed; latest checkpoint at step %d (epoch %d, batch %d)", s.Step, s.Epoch, s.BatchInEpoch)
	res := runFlowood(t, "train", "--out", killed, "--resume")
	if !strings.Contains(res, "trained 30 steps") {
		t.Errorf("resumed run says:\n%s", res)
	}
	sameCheckpoints(t, straight, killed)
}
