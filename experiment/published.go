package experiment

import (
	"fmt"
	"sort"
	"strings"
)

// PublishedAUROC is one AUROC a score's own paper reports, as read there.
type PublishedAUROC struct {
	// In and OOD are the in-distribution and OOD data sets, as flowood
	// names them.
	In, OOD string
	// AUROC is in percent, in-distribution positive.
	AUROC float64
	// Model is the model the paper measured it with (their models and
	// training budgets differ from flowood's).
	Model string
	// Source says where the number was read: paper, table, row.
	Source string
}

// ScorePaper is the paper that proposed one of flowood eval's scores and
// the AUROCs read in it for Table 1's pairs.
type ScorePaper struct {
	// Scores are the flowood scores (ScoreNames) the paper's method is.
	Scores []string
	// Paper cites the paper in full; Cite is its short form for tables.
	Paper, Cite string
	// AUROCs are the numbers read in the paper; empty when none could be
	// read here (Searched then says where they were looked for).
	AUROCs []PublishedAUROC
	// Searched lists where the paper's numbers were looked for, when
	// AUROCs is empty.
	Searched string
}

// notFound stands in a report for a published number that could not be
// read in any source reachable when this table was written.
const notFound = "not found in reachable sources"

// ScorePapers lists, per score, its own paper and the AUROCs read in it.
// Only numbers read in a source are here, each with the source; the
// log-likelihood's are Kirichenko et al.'s Table 1 (PaperAUROC). For the
// other papers, the copies reachable when this table was written (a
// store of web pages searchable only in their opening part, and of
// GitHub files) held their abstracts and introductions, summaries and
// code READMEs, but no table of results: their numbers are left out
// rather than quoted from memory.
var ScorePapers = []ScorePaper{
	{
		Scores: []string{"loglik"},
		Paper:  "Kirichenko, Izmailov, Wilson 2020, Why Normalizing Flows Fail to Detect Out-of-Distribution Data",
		Cite:   "Kirichenko et al. 2020",
		AUROCs: kirichenkoAUROCs(),
	},
	{
		Scores:   []string{"lr"},
		Paper:    "Ren et al. 2019 (NeurIPS), Likelihood Ratios for Out-of-Distribution Detection",
		Cite:     "Ren et al. 2019",
		Searched: "the NeurIPS 2019 proceedings metadata and reviews pages, the arXiv abstract page and the Google Research blog post of 2019-12-17 (each reachable in its opening part only), the authors' code README google-research/genomics_ood/images_ood (no results), GitHub code and issues",
	},
	{
		Scores:   []string{"ic", "ic_lzma"},
		Paper:    "Serra et al. 2020 (ICLR), Input complexity and out-of-distribution detection with likelihood-based generative models",
		Cite:     "Serra et al. 2020",
		Searched: "the deepai.org copy (opening part only), a reproduction's README (its own VAE numbers, not the paper's), GitHub code",
	},
	{
		Scores:   []string{"typicality", "typicality_batch"},
		Paper:    "Nalisnick et al. 2019, Detecting Out-of-Distribution Inputs to Deep Generative Models Using Typicality",
		Cite:     "Nalisnick et al. 2019",
		Searched: "the arxiv-vanity and docslib copies (opening part only), GitHub code",
	},
	{
		Scores:   []string{"waic"},
		Paper:    "Choi, Jang, Alemi 2018, WAIC, but Why? Generative Ensembles for Robust Anomaly Detection",
		Cite:     "Choi et al. 2018",
		Searched: "the vdocument.in and groundai copies (opening part only), the authors' code README hschoi1/rich_latent (no numbers); an aggregator (wizwand.com) lists AUROCs under this paper without the paper, table or model they come from, so none is taken",
	},
	{
		Scores:   []string{"dose"},
		Paper:    "Morningstar et al. 2021 (AISTATS), Density of States Estimation for Out-of-Distribution Detection",
		Cite:     "Morningstar et al. 2021",
		Searched: "GitHub code and LaTeX sources that cite it (no copy of the paper's text found)",
	},
	{
		Scores:   []string{"general"},
		Paper:    "Schirrmeister et al. 2020 (NeurIPS), Understanding anomaly detection with deep invertible networks through hierarchies of distributions and features",
		Cite:     "Schirrmeister et al. 2020",
		Searched: "the authors' code README boschresearch/hierarchical_anomaly_detection (no results), GitHub code",
	},
}

// kirichenkoAUROCs returns the RealNVP rows of Kirichenko et al.'s
// Table 1 (PaperAUROC) as PublishedAUROCs.
func kirichenkoAUROCs() []PublishedAUROC {
	var out []PublishedAUROC
	for in, oods := range PaperAUROC["realnvp"] {
		for o, v := range oods {
			out = append(out, PublishedAUROC{In: in, OOD: o, AUROC: v, Model: "RealNVP (the paper's App. E training)",
				Source: "Kirichenko et al. 2020, Table 1 (App. F)"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].In+out[i].OOD < out[j].In+out[j].OOD })
	return out
}

// publishedFor returns the paper of score in papers and the AUROC it
// reports for in -> ood (nil when it reports none, or none was read).
func publishedFor(papers []ScorePaper, score, in, ood string) (*ScorePaper, *PublishedAUROC) {
	for i := range papers {
		p := &papers[i]
		for _, s := range p.Scores {
			if s != score {
				continue
			}
			for j := range p.AUROCs {
				if a := &p.AUROCs[j]; a.In == in && a.OOD == ood {
					return p, a
				}
			}
			return p, nil
		}
	}
	return nil, nil
}

// publishedTables renders, for each OOD set met scored, a table of every
// score met holds: its AUROC measured here (ours describes the model)
// with its 95% interval, beside the AUROC the score's own paper reports
// for the same pair, the model the paper measured it with and where it
// was read; "not found in reachable sources" where no number was read.
func publishedTables(in string, met *Metrics, papers []ScorePaper, ours string) string {
	var b strings.Builder
	var oods []string
	for o := range met.OOD {
		oods = append(oods, o)
	}
	sort.Strings(oods)
	for _, o := range oods {
		base, _, _ := strings.Cut(o, "@")
		fmt.Fprintf(&b, "Trained on %s, OOD %s:\n\n| score | measured here (%s) | published | their model | source |\n|---|---|---|---|---|\n", in, o, ours)
		for _, sc := range met.Scores {
			rep, ok := met.OOD[o][sc]
			if !ok {
				continue
			}
			measured := pct(rep.AUROC)
			if rep.AUROCCI != nil {
				measured += fmt.Sprintf(" [%s, %s]", pct(rep.AUROCCI[0]), pct(rep.AUROCCI[1]))
			}
			paper, a := publishedFor(papers, sc, in, base)
			switch {
			case a != nil:
				fmt.Fprintf(&b, "| %s | %s | %g | %s | %s |\n", sc, measured, a.AUROC, a.Model, a.Source)
			case paper != nil && len(paper.AUROCs) > 0:
				fmt.Fprintf(&b, "| %s | %s | not in the table read | – | %s |\n", sc, measured, paper.Cite)
			case paper != nil:
				fmt.Fprintf(&b, "| %s | %s | %s | – | %s |\n", sc, measured, notFound, paper.Cite)
			default:
				fmt.Fprintf(&b, "| %s | %s | – | – | – |\n", sc, measured)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
