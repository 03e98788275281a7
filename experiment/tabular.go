package experiment

import (
	"fmt"
	"slices"

	"github.com/flowood/flowood/data"
)

// What the pipeline does for tables that it does not for images: data
// sets given as .npz files by path (data.IsTableFile), and data sets
// without a train split.

// isTabular reports whether name is a tabular data set: a registered one
// or an .npz table file.
func isTabular(name string) bool { return data.IsTableFile(name) || data.IsTabular(name) }

// splitsOf returns the splits of data set name: registered, or the
// arrays of an .npz table file (data.TableFileSplits).
func splitsOf(name string) ([]string, error) {
	if data.IsTableFile(name) {
		return data.TableFileSplits(name)
	}
	return data.Splits(name)
}

// trainSplit returns the split a model of data set name trains on:
// "train"; or, where there is none, "val" when there is a test split to
// evaluate on (the mirror's MINIBOONE: MAF's val and test splits only).
func trainSplit(name string) (string, error) {
	splits, err := splitsOf(name)
	if err != nil {
		return "", err
	}
	switch {
	case slices.Contains(splits, "train"):
		return "train", nil
	case slices.Contains(splits, "val") && slices.Contains(splits, "test"):
		return "val", nil
	}
	return "", fmt.Errorf("dataset %s has no train split, nor val and test splits to train and evaluate on (it has: %v)", name, splits)
}

// TrainSplitNote says which split a run trains on where it is not
// "train", for logs; it is empty otherwise.
func (rc RunConfig) TrainSplitNote() string {
	if rc.Data.Train() == "train" {
		return ""
	}
	held, err := heldOutSplit(rc.Data.Name)
	if err == nil && held == rc.Data.Train() {
		return fmt.Sprintf("training on %s's %s split (config.json data.train_split), which is also its held-out split: held-out bits/dim are measured on training data",
			rc.Data.Name, rc.Data.Train())
	}
	return fmt.Sprintf("%s has no train split here: training on its %s split and evaluating on test (config.json data.train_split)",
		rc.Data.Name, rc.Data.Train())
}

// loadTable returns split split of tabular data set name, registered or
// an .npz table file.
func loadTable(name, split string) (*data.Tabular, error) {
	if data.IsTableFile(name) {
		return data.LoadTableFile(name, split)
	}
	t, err := data.LoadTabular(name, split, data.Options{})
	return t, offline(err)
}
