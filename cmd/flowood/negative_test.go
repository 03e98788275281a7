package main

import (
	"bytes"
	"context"
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

// TestNegativeKillResume is issue 11's resume check for negative
// training: a run with MNIST as negative data, killed with SIGKILL
// mid-epoch after a periodic checkpoint, then resumed, ends with the same
// weights, byte for byte, as an uninterrupted run (the OOD stream's
// position and noise are in the checkpoint); config.json records the
// objective. The negative set is MNIST's train split, which only the
// mirror has: it needs FLOWOOD_MIRROR.
func TestNegativeKillResume(t *testing.T) {
	if os.Getenv("FLOWOOD_MIRROR") == "" {
		t.Skip("FLOWOOD_MIRROR not set (the negative set is MNIST's train split, not embedded)")
	}
	args := []string{"train", "--preset", "tiny", "--batch", "8", "--train-limit", "160", "--test-limit", "16",
		"--epochs", "2", "--max-steps", "30", "--seed", "7", "--negative-data", "mnist", "--negative-threshold", "-30000"}
	dir := t.TempDir()
	straight := filepath.Join(dir, "straight")
	runFlowood(t, append(args, "--out", straight)...)
	b, err := os.ReadFile(filepath.Join(straight, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Objective map[string]any `json:"objective"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Objective["name"] != "negative" || cfg.Objective["negative_data"] != "mnist" ||
		cfg.Objective["negative_threshold"] != -30000.0 || cfg.Objective["negative_weight"] != 1.0 {
		t.Errorf("config.json objective %v", cfg.Objective)
	}

	killed := filepath.Join(dir, "killed")
	cmd, out := startFlowood(t, append(args, "--checkpoint-every", "50ms", "--out", killed)...)
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
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err = <-exited
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the run was not killed by SIGKILL (it ended: %v); output:\n%s", err, out)
	}
	s, _ := readState(killed)
	st, _ := os.ReadFile(filepath.Join(killed, "checkpoint", "latest", "state.json"))
	if !bytes.Contains(st, []byte("negative_stream")) {
		t.Errorf("the checkpoint has no negative stream state: %s", st)
	}
	t.Logf("killed; latest checkpoint at step %d (epoch %d, batch %d)", s.Step, s.Epoch, s.BatchInEpoch)
	if res := runFlowood(t, "train", "--out", killed, "--resume"); !strings.Contains(res, "trained 30 steps") {
		t.Errorf("resumed run says:\n%s", res)
	}
	sameCheckpoints(t, straight, killed)
}

// TestNegativeFlagErrors checks that the negative-training flags are
// refused, with a message naming the flag or field, where they cannot
// apply; nothing is trained.
func TestNegativeFlagErrors(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--negative-threshold", "-30000"}, "--negative-threshold is for negative training"}, // 0
		{[]string{"--negative-weight", "2"}, "--negative-weight is for negative training"},            // 1
		{[]string{"--negative-data", "mnist", "--negative-weight", "-1"}, "--negative-weight -1 must be positive"},
		{[]string{"--negative-data", "mnist", "--negative-threshold", "NaN"}, "--negative-threshold NaN must be a finite number"},
		{[]string{"--negative-data", "miniboone"}, "negative_data miniboone is tabular"}, // 4
		{[]string{"--negative-data", "nosuch"}, `unknown dataset "nosuch"`},              // 5
	} {
		out := filepath.Join(dir, "run")
		var stdout, stderr bytes.Buffer
		args := append([]string{"train", "--preset", "tiny", "--embedded", "--out", out}, c.args...)
		err := run(context.Background(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d: %v: %v, want an error saying %q", i, c.args, err, c.want)
		}
		if _, serr := os.Stat(out); serr == nil {
			t.Errorf("%d: the run folder was created", i)
		}
	}
}
