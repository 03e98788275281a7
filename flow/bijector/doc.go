// Package bijector holds the invertible layers of image flows. Each type's
// doc states its forward map (data x to latent z), inverse and log-det, per
// the convention of package flow.
package bijector
