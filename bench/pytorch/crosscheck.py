#!/usr/bin/env python3
"""Checks that bench.py's PyTorch RealNVP computes what flowood's Go RealNVP
computes: same parameter names and count, same log-likelihoods (evaluation
and training-mode batch norm) and same loss gradients, on the parameters,
buffers and input written by gocheck/dump.go.

    go run bench/pytorch/gocheck/dump.go -preset cpu -out /tmp/flowood_dump.json
    /usr/bin/python3 bench/pytorch/crosscheck.py /tmp/flowood_dump.json

Exits non-zero when a relative difference exceeds --tol.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump", help="JSON file written by gocheck/dump.go")
    ap.add_argument("--tol", type=float, default=1e-3, help="largest relative difference allowed")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    d = json.load(open(args.dump))
    cfg = d["config"]
    model = bench.build_modules()["RealNVP"](
        scales=cfg["scales"], blocks=cfg["blocks"], mid=cfg["mid"], height=cfg["height"],
        width=cfg["width"], channels=cfg["channels"], constraint=cfg["constraint"])
    if cfg.get("activation", "relu") != "relu":
        sys.exit("only the relu activation is mirrored")

    def torch_name(go_name):
        # Go: Chain{Logit, body} names the body "1"
        assert go_name.startswith("1."), go_name
        return "body." + go_name[2:]

    def to_torch(t):
        x = torch.tensor(t["data"], dtype=torch.float32).view(t["shape"])
        if x.dim() == 4:  # conv weight [K, K, Cin, Cout] -> [Cout, Cin, K, K]
            x = x.permute(3, 2, 0, 1).contiguous()
        return x

    state = model.state_dict()
    go_names = {torch_name(n) for n in d["tensors"]}
    torch_names = {n for n in state if not n.endswith(("num_batches_tracked", "mask"))}
    if go_names != torch_names:
        sys.exit("name mismatch:\n only Go: %s\n only PyTorch: %s"
                 % (sorted(go_names - torch_names), sorted(torch_names - go_names)))
    for n, t in d["tensors"].items():
        v = to_torch(t)
        tn = torch_name(n)
        if tuple(v.shape) != tuple(state[tn].shape):
            sys.exit("shape mismatch for %s: Go %s, PyTorch %s" % (n, tuple(v.shape), tuple(state[tn].shape)))
        state[tn] = v
    model.load_state_dict(state)
    n_params = bench.count_params(model)
    print("parameters: PyTorch %d, Go %d, by hand %d" % (
        n_params, d["params"], bench.realnvp_params_by_hand(cfg["scales"], cfg["blocks"], cfg["mid"], cfg["channels"])))

    u = torch.tensor(d["u"]["data"], dtype=torch.float32).view(d["u"]["shape"])
    u = u.permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
    worst = 0.0

    def compare(label, got, want, floor=0.0):
        # max |got - want| relative to max |want| (at least floor)
        nonlocal worst
        want = torch.tensor(want, dtype=torch.float64).view(got.shape)
        got = got.detach().double()
        scale = max(want.abs().max().item(), floor, 1e-30)
        rel = (got - want).abs().max().item() / scale
        worst = max(worst, rel)
        return rel

    model.eval()
    with torch.no_grad():
        lp_eval = bench.log_prob(model, u)
    print("eval  log p: max rel diff %.2e   PyTorch %s" % (compare("eval", lp_eval, d["lp_eval"]), lp_eval[:3].tolist()))
    model.train()
    lp = bench.log_prob(model, u)
    print("train log p: max rel diff %.2e   PyTorch %s" % (compare("train", lp, d["lp_train"]), lp[:3].tolist()))
    (-lp.mean()).backward()
    # Some gradients are exactly zero in exact arithmetic (the biases of
    # convolutions whose every path to the loss passes through a batch norm
    # in training mode), so both sides hold only rounding noise there: their
    # differences are measured against 1e-3 of the largest gradient entry.
    floor = 1e-3 * max(max(abs(v) for v in g) for g in d["grads"].values())
    grad_worst, grad_name = 0.0, ""
    params = dict(model.named_parameters())
    for n, g in d["grads"].items():
        p = params[torch_name(n)]
        want = to_torch({"shape": d["tensors"][n]["shape"], "data": g})
        rel = compare(n, p.grad, want.flatten().tolist(), floor)
        if rel > grad_worst:
            grad_worst, grad_name = rel, n
    print("gradients:   max rel diff %.2e (%s), %d tensors" % (grad_worst, grad_name, len(d["grads"])))
    if worst > args.tol or n_params != d["params"]:
        print("MISMATCH (tolerance %g)" % args.tol)
        sys.exit(1)
    print("OK: PyTorch and Go agree within %g" % args.tol)


if __name__ == "__main__":
    main()
