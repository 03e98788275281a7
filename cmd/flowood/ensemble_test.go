package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrainEnsemble runs train --ensemble 2 and eval --score waic with no
// members named, then the resume rules and the flag's errors.
func TestTrainEnsemble(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--preset", "tiny", "--embedded", "--max-steps", "2", "--batch", "16", "--test-limit", "16", "--seed", "3", "--out", run}
	stdout, stderr, err := runCLI(t, append(args, "--ensemble", "2")...)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	for _, w := range []string{"member 1/2 (seed 3): trained 2 steps", "member 2/2 (seed 4): trained 2 steps", filepath.Join(run, "ensemble", "1"), "ensemble of 2 members"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("train output lacks %q:\n%s", w, stdout)
		}
	}
	if !strings.Contains(stderr, "ensemble: member 2 of 2 (seed 4)") {
		t.Errorf("progress does not say which member trains:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(run, "ensemble", "1", "checkpoint", "latest", "model.safetensors")); err != nil {
		t.Errorf("member 2 has no checkpoint: %v", err)
	}
	stdout, stderr, err = runCLI(t, "eval", run, "--ood", "mnist", "--limit", "16", "--score", "waic", "--bootstrap", "0")
	if err != nil {
		t.Fatalf("eval --score waic: %v\n%s", err, stderr)
	}
	if rows := readScores(t, run); !strings.HasSuffix(strings.Join(rows[0], ","), ",waic") {
		t.Errorf("scores.csv header %v lacks waic", rows[0])
	}

	stdout, stderr, err = runCLI(t, "train", "--out", run, "--resume")
	if err != nil {
		t.Fatalf("train --resume: %v\n%s", err, stderr)
	}
	if strings.Count(stdout, "is already finished") != 2 {
		t.Errorf("resuming a finished ensemble:\n%s", stdout)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{append(args[:len(args):len(args)], "--ensemble", "0"), "--ensemble 0"},
		{[]string{"train", "--out", run, "--resume", "--ensemble", "1"}, "ensemble of 2 members"},
		{[]string{"eval", filepath.Join(t.TempDir(), "none"), "--score", "waic"}, "not a run folder"},
	} {
		_, _, err := runCLI(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one mentioning %q", c.args, err, c.want)
		}
	}
	// a run trained alone has no ensemble for waic
	alone := filepath.Join(t.TempDir(), "alone")
	if _, stderr, err := runCLI(t, "train", "--preset", "tiny", "--embedded", "--max-steps", "1", "--batch", "16", "--test-limit", "16", "--out", alone); err != nil {
		t.Fatalf("train: %v\n%s", err, stderr)
	}
	if _, _, err := runCLI(t, "eval", alone, "--ood", "mnist", "--limit", "8", "--score", "waic"); err == nil || !strings.Contains(err.Error(), "flowood train --ensemble K") {
		t.Errorf("waic of a run without ensemble: error %v", err)
	}
}
