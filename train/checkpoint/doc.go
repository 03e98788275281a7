// Package checkpoint saves and restores models and training state.
//
// Weights are stored in the safetensors format
// (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON header (padded with spaces so the data
// starts at a multiple of 8), then the raw little-endian tensor bytes. Only
// F32 tensors are written and read. Files written here load with PyTorch's
// safetensors.torch.load_file; note that flowood's tensors are NHWC and its
// convolution weights HWIO ([KH, KW, Cin, Cout]), so they need a permute
// before use in a PyTorch model.
//
// A checkpoint is a directory holding model.safetensors (every tensor of
// the model, parameters and buffers such as batch-norm running statistics,
// under the names nn.Tensors gives), optimizer.safetensors (the
// optimiser's per-parameter buffers, such as Adam's moments, named by the
// optimiser) and state.json (the rest of State, a few hundred bytes, plus
// a format version). Save replaces a checkpoint directory so that an
// interrupted Save leaves either the previous or the new checkpoint
// complete, never a mix of them. Load reads what evaluation needs (the
// model and the small state), LoadTraining the optimiser's state too.
// Checkpoints of format version 1 (moments as JSON in state.json) still
// load.
package checkpoint
