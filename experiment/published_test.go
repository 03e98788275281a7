package experiment

import (
	"slices"
	"strings"
	"testing"

	"github.com/flowood/flowood/ood"
)

// TestPublishedTables renders a fixture (the numbers below are test
// values, not published ones) and checks each row: a number read in a
// paper is shown beside the measured AUROC with its model and source, a
// paper without numbers says so, a score without a paper gets dashes.
func TestPublishedTables(t *testing.T) {
	met := &Metrics{
		Scores: []string{"loglik", "lr", "waic"},
		OOD: map[string]map[string]ood.Report{
			"mnist": {
				"loglik": {AUROC: 0.07, AUROCCI: &ood.Interval{0.05, 0.09}},
				"lr":     {AUROC: 0.6},
				"waic":   {AUROC: 0.25},
			},
			"notmnist@jpeg90": {"loglik": {AUROC: 0.5}},
		},
	}
	papers := []ScorePaper{
		{Scores: []string{"loglik"}, Paper: "Fixture A, in full", Cite: "Fixture A", AUROCs: []PublishedAUROC{
			{In: "fashionmnist", OOD: "mnist", AUROC: 12.5, Model: "ModelX", Source: "fixture table 9"},
			{In: "mnist", OOD: "notmnist", AUROC: 99, Model: "ModelX", Source: "fixture table 9"},
		}},
		{Scores: []string{"lr"}, Paper: "Fixture B, in full", Cite: "Fixture B"},
	}
	got := publishedTables("fashionmnist", met, papers, "RealNVP, preset tiny")
	for _, want := range []string{
		"Trained on fashionmnist, OOD mnist:",
		"| score | measured here (RealNVP, preset tiny) | published | their model | source |",
		"| loglik | 7.0 [5.0, 9.0] | 12.5 | ModelX | fixture table 9 |",
		"| lr | 60.0 | not found in reachable sources | – | Fixture B |",
		"| waic | 25.0 | – | – | – |",
		"Trained on fashionmnist, OOD notmnist@jpeg90:",
		"| loglik | 50.0 | not in the table read | – | Fixture A |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("rendered tables lack %q:\n%s", want, got)
		}
	}
}

// TestScorePapers checks the table of published numbers: every score the
// scores recipe reports has its paper, every number its source and
// model and a value that is a percentage, and every paper without
// numbers says where they were looked for.
func TestScorePapers(t *testing.T) {
	for _, sc := range ScoreNames {
		if p, _ := publishedFor(ScorePapers, sc, "fashionmnist", "mnist"); p == nil {
			t.Errorf("score %s has no paper in ScorePapers", sc)
		}
	}
	for _, p := range ScorePapers {
		for _, sc := range p.Scores {
			if sc != "typicality_batch" && !slices.Contains(ScoreNames, sc) {
				t.Errorf("%s: unknown score %s", p.Paper, sc)
			}
		}
		if p.Cite == "" {
			t.Errorf("%s: no short citation", p.Paper)
		}
		if len(p.AUROCs) == 0 && p.Searched == "" {
			t.Errorf("%s: no numbers and no word of where they were looked for", p.Paper)
		}
		for _, a := range p.AUROCs {
			if a.Source == "" || a.Model == "" || !(a.AUROC >= 0 && a.AUROC <= 100) {
				t.Errorf("%s: %+v", p.Paper, a)
			}
		}
	}
	// the log-likelihood's numbers are Table 1's RealNVP column
	if _, a := publishedFor(ScorePapers, "loglik", "fashionmnist", "mnist"); a == nil || a.AUROC != 10.8 {
		t.Errorf("loglik fashionmnist -> mnist: %+v, want Table 1's 10.8", a)
	}
}
