// Package flow defines normalizing flows over package tensor.
//
// Direction. A Bijector's Forward maps data x to latent z (the density
// direction, as in nflows and zuko) and returns, from the same call,
// logDet = log|det dz/dx| summed over each example (shape [N]). Inverse maps
// z back to x and returns log|det dx/dz| = -logDet. A Flow's density is
//
//	log p(x) = log N(z; 0, I) + logDet(x),   z = Forward(x).
//
// Steps of a Chain apply in order: Steps[0] first in Forward, last in
// Inverse. Bijectors are deterministic functions of their input when their
// batch norms are in evaluation mode (nn.Mode); in training mode a batch
// norm uses the statistics of the current batch.
package flow
