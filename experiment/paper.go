package experiment

// PaperAUROC holds Table 1 of Kirichenko et al. (2020): AUROC (in percent)
// of OOD detection by log-likelihood, keyed by model, in-distribution and
// OOD dataset names.
var PaperAUROC = map[string]map[string]map[string]float64{
	"realnvp": {
		"fashionmnist": {"mnist": 10.8, "notmnist": 72.1},
		"mnist":        {"fashionmnist": 99.99, "notmnist": 99.99},
	},
	"glow": {
		"fashionmnist": {"mnist": 13.3, "notmnist": 80.2},
		"mnist":        {"fashionmnist": 99.96, "notmnist": 100.0},
	},
}
