package experiment

// PaperAUROC holds Table 1 of Kirichenko et al. (2020): AUROC (in percent)
// of OOD detection by log-likelihood, keyed by model, in-distribution and
// OOD dataset names. (The RealNVP SVHN-vs-CIFAR-10 cell is not legible in
// the text of the paper available here and is left out.)
var PaperAUROC = map[string]map[string]map[string]float64{
	"realnvp": {
		"fashionmnist": {"mnist": 10.8, "notmnist": 72.1},
		"mnist":        {"fashionmnist": 99.99, "notmnist": 99.99},
		"celeba":       {"cifar10": 67.7, "svhn": 6.3},
		"cifar10":      {"celeba": 56.0, "svhn": 6.0},
		"svhn":         {"celeba": 99.0},
	},
	"glow": {
		"fashionmnist": {"mnist": 13.3, "notmnist": 80.2},
		"mnist":        {"fashionmnist": 99.96, "notmnist": 100.0},
		"celeba":       {"cifar10": 69.1, "svhn": 6.4},
		"cifar10":      {"celeba": 52.9, "svhn": 5.5},
		"svhn":         {"celeba": 99.9, "cifar10": 99.1},
	},
}
