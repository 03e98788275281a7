package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestTrainHelpListsEveryFlag checks flowood train -h: every flag it
// lists has a description, and the usage line at its top names every one
// of them, so the synopsis is the whole interface (a flag added without
// its place in the usage line fails here).
func TestTrainHelpListsEveryFlag(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"help", "train"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	help := stdout.String() + stderr.String()
	lines := strings.Split(help, "\n")
	flagLine := regexp.MustCompile(`^  -([a-z0-9-]+)( .*)?$`)
	var flags []string
	for i, l := range lines {
		m := flagLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		flags = append(flags, m[1])
		if i+1 >= len(lines) || len(strings.TrimSpace(lines[i+1])) < 10 || strings.HasPrefix(lines[i+1], "  -") {
			t.Errorf("flag -%s has no description", m[1])
		}
	}
	if len(flags) < 20 {
		t.Fatalf("train -h lists %d flags:\n%s", len(flags), help)
	}
	usage := lines[0]
	if !strings.HasPrefix(usage, "usage: flowood train ") {
		t.Fatalf("first line of train -h: %q", usage)
	}
	for _, f := range flags {
		if !regexp.MustCompile(`--` + regexp.QuoteMeta(f) + `\b([^-]|$)`).MatchString(usage) {
			t.Errorf("the usage line does not name --%s", f)
		}
	}
	for _, f := range []string{"negative-data", "negative-threshold", "negative-weight"} {
		found := false
		for _, g := range flags {
			found = found || g == f
		}
		if !found {
			t.Errorf("train -h does not list -%s", f)
		}
	}
}
