// Package viz writes the figures used to inspect normalizing flows for
// out-of-distribution (OOD) detection as PNG files: overlaid
// log-likelihood histograms (Histogram), ROC curves (ROC) and image grids
// of samples or latents (ImageGrid).
//
// Every function writes its file atomically: the PNG is encoded into a
// temporary file in the destination directory, which is then renamed over
// path, so readers never observe a partially written image and a failed
// call leaves any previous file at path untouched. Every error names path.
//
// Scores follow the convention of package ood: higher means more
// in-distribution.
package viz
