#!/usr/bin/env python3
"""PyTorch reference for flowood's benchmarks.

The networks mirror flowood's Go code (model/realnvp, nn/resnet.go,
flow/bijector, flow/mask, tensor/shape.go) operation for operation, written
as an ordinary PyTorch user would write them: NCHW tensors, nn.Conv2d,
nn.BatchNorm2d, torch.optim.Adam. See README.md in this directory.

Run:  /usr/bin/python3 bench/pytorch/bench.py --threads 2 [--quick]

Every result is one JSON object per line on stdout:
    {"name": ..., "unit": ..., "value": ...}
Some lines carry extra keys (median_ms, steps, blas, ...) for humans; the
three keys above are the contract. By default each benchmark runs in its own
subprocess (so peak RSS is per benchmark); --only NAME runs one in-process.
"""

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

# Benchmarks in the order the default run executes them.
BENCHES = [
    "realnvp_train",
    "realnvp_eval",
    "coupling4_train",
    "realnvp_paper_train",
    "glow_train",
    "sgemm_numpy",
    "sgemm_torch",
    "tabular_train",
]

# Name of the peak-RSS metric of each benchmark's process.
RSS_NAMES = {
    "realnvp_train": "pytorch_realnvp_train_peak_rss_mib",
    "realnvp_eval": "pytorch_realnvp_eval_peak_rss_mib",
    "coupling4_train": "pytorch_coupling4_train_peak_rss_mib",
    "realnvp_paper_train": "pytorch_realnvp_paper_train_peak_rss_mib",
    "glow_train": "pytorch_glow_train_peak_rss_mib",
    "sgemm_numpy": "openblas_sgemm_peak_rss_mib",
    "sgemm_torch": "torch_sgemm_peak_rss_mib",
    "tabular_train": "pytorch_tabular_train_peak_rss_mib",
}

# flowood's presets (model/realnvp/realnvp.go), all for 28x28x1 images.
PRESETS = {
    "paper": dict(scales=2, blocks=6, mid=64),
    "cpu": dict(scales=2, blocks=2, mid=16),
    "tiny": dict(scales=2, blocks=1, mid=4),
}


def emit(name, unit, value, **extra):
    rec = {"name": name, "unit": unit, "value": value}
    rec.update(extra)
    print(json.dumps(rec), flush=True)


class Interference:
    """Measures how much of the machine's CPU time went to other processes
    while a benchmark ran, from /proc/stat and this process's CPU time:
    other = (busy ticks of all CPUs - this process's CPU time) / all ticks,
    so 0 on an otherwise idle machine and about 0.5 when another process
    keeps one of two cores busy. steal is the hypervisor's share."""

    def __init__(self):
        self.start()

    @staticmethod
    def _snap():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        user, nice, system, idle, iowait, irq, softirq, steal = v
        busy = user + nice + system + irq + softirq
        return busy / hz, sum(v) / hz, steal / hz, time.process_time()

    def start(self):
        self.a = self._snap()

    def fields(self):
        b = self._snap()
        if self.a is None or b is None or b[1] <= self.a[1]:
            return {}
        busy, total, steal, own = (y - x for x, y in zip(self.a, b))
        return dict(other_cpu_frac=round(max(busy - own, 0.0) / total, 3),
                    steal_frac=round(steal / total, 3))


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ---------------------------------------------------------------------------
# Model (built lazily so the parent process never imports torch)


def build_modules():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class ResBlock(nn.Module):
        """x + conv3x3(relu(BN(conv3x3_nobias(relu(BN(x))))))."""

        def __init__(self, mid):
            super().__init__()
            self.in_norm = nn.BatchNorm2d(mid)
            self.in_conv = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
            self.out_norm = nn.BatchNorm2d(mid)
            self.out_conv = nn.Conv2d(mid, mid, 3, padding=1, bias=True)

        def forward(self, x):
            h = self.in_conv(F.relu(self.in_norm(x)))
            h = self.out_conv(F.relu(self.out_norm(h)))
            return x + h

    class ResNetST(nn.Module):
        """st-network of nn/resnet.go:

        h = relu(concat(d*BN(x), -d*BN(x)))      d = 2 if double else 1
        h = conv3x3(h); skip = conv1x1(h)
        per block: h = block(h); skip += conv1x1(h)
        y = conv1x1(relu(BN(skip)))              zero-initialised
        """

        def __init__(self, cin, mid, cout, blocks, double):
            super().__init__()
            self.double = double
            self.in_norm = nn.BatchNorm2d(cin)
            self.in_conv = nn.Conv2d(2 * cin, mid, 3, padding=1)
            self.in_skip = nn.Conv2d(mid, mid, 1)
            self.blocks = nn.ModuleList([ResBlock(mid) for _ in range(blocks)])
            self.skips = nn.ModuleList([nn.Conv2d(mid, mid, 1) for _ in range(blocks)])
            self.out_norm = nn.BatchNorm2d(mid)
            self.out_conv = nn.Conv2d(mid, cout, 1)
            nn.init.zeros_(self.out_conv.weight)
            nn.init.zeros_(self.out_conv.bias)

        def forward(self, x):
            x = self.in_norm(x)
            if self.double:
                x = 2 * x
            x = F.relu(torch.cat([x, -x], dim=1))
            x = self.in_conv(x)
            skip = self.in_skip(x)
            for block, sk in zip(self.blocks, self.skips):
                x = block(x)
                skip = skip + sk(x)
            return self.out_conv(F.relu(self.out_norm(skip)))

    def checkerboard(h, w, reverse):
        # 1 where (i + j) is even (the conditioning part), flipped by reverse;
        # the same in every channel (flow/mask/mask.go).
        i = torch.arange(h).view(h, 1)
        j = torch.arange(w).view(1, w)
        keep = ((i + j) % 2 == 0) != reverse
        return keep.to(torch.float32).view(1, 1, h, w)

    class AffineCoupling(nn.Module):
        """flow/bijector/coupling.go: z = (x + t) * exp(s) on the changed
        part, s = scale * tanh(s_raw), log-det = sum of s.

        kind "checkerboard": the st-net sees mask*x (c channels) and predicts
        2c channels; s and t are zeroed on the conditioning part.
        kind "channel": the st-net sees the kept half of the channels (the
        first half unless reverse) and predicts s, t for the other half.
        """

        def __init__(self, kind, h, w, c, reverse, mid, blocks):
            super().__init__()
            self.kind = kind
            if kind == "checkerboard":
                m = checkerboard(h, w, reverse)
                self.register_buffer("mask", m)
                self.register_buffer("inv_mask", 1 - m)
                self.scale = nn.Parameter(torch.ones(c))
                self.st_net = ResNetST(c, mid, 2 * c, blocks, double=True)
            elif kind == "channel":
                if c % 2:
                    raise ValueError("channel mask over an odd number of channels")
                self.first_kept = not reverse
                self.scale = nn.Parameter(torch.ones(c // 2))
                self.st_net = ResNetST(c // 2, mid, c, blocks, double=False)
            else:
                raise ValueError(kind)

        def st(self, cond):
            raw, t = self.st_net(cond).chunk(2, dim=1)  # s_raw first, then t
            s = torch.tanh(raw) * self.scale.view(1, -1, 1, 1)
            return s, t

        def forward(self, x):
            if self.kind == "channel":
                a, b = x.chunk(2, dim=1)
                xid, xch = (a, b) if self.first_kept else (b, a)
                s, t = self.st(xid)
                zc = (xch + t) * torch.exp(s)
                z = torch.cat([xid, zc] if self.first_kept else [zc, xid], dim=1)
                return z, s.flatten(1).sum(1)
            s, t = self.st(x * self.mask)
            s = s * self.inv_mask
            t = t * self.inv_mask
            z = (x + t) * torch.exp(s)
            return z, s.flatten(1).sum(1)

    class Squeeze(nn.Module):
        """Space-to-depth of tensor/shape.go: input (c, h, w) goes to channel
        4c + 2(h mod 2) + (w mod 2) at (h/2, w/2)."""

        def forward(self, x):
            n, c, h, w = x.shape
            x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
            return x.reshape(n, 4 * c, h // 2, w // 2), None

    class Scale(nn.Module):
        """One scale of flow/bijector/multiscale.go: steps, then the first
        half of the channels is factored out and `next` transforms the rest;
        the latent is the concatenation of the flattened pieces."""

        def __init__(self, steps, next_scale):
            super().__init__()
            self.steps = nn.ModuleList(steps)
            self.next = next_scale

        def forward(self, x):
            ld = x.new_zeros(x.shape[0])
            for step in self.steps:
                x, d = step(x)
                if d is not None:
                    ld = ld + d
            n, c = x.shape[0], x.shape[1]
            if self.next is None:
                return x.reshape(n, -1), ld
            out, keep = x[:, : c // 2], x[:, c // 2 :]
            zn, ld2 = self.next(keep)
            return torch.cat([out.reshape(n, -1), zn], dim=1), ld + ld2

    class RealNVP(nn.Module):
        """model/realnvp/realnvp.go: Logit preprocessing, then per scale 3
        checkerboard couplings, squeeze, 3 channel couplings (hidden width
        doubled), factor out half; the last scale has 4 checkerboard
        couplings. The hidden width doubles at each scale."""

        def __init__(self, scales=2, blocks=6, mid=64, height=28, width=28,
                     channels=1, constraint=0.9):
            super().__init__()
            self.alpha = (1 - constraint) / 2
            self.body = self._scale(0, scales, blocks, height, width, channels, mid)

        def _scale(self, s, scales, blocks, h, w, c, mid):
            last = s == scales - 1
            steps = [AffineCoupling("checkerboard", h, w, c, i % 2 == 1, mid, blocks)
                     for i in range(4 if last else 3)]
            if last:
                return Scale(steps, None)
            steps.append(Squeeze())
            h, w, c = h // 2, w // 2, 4 * c
            steps += [AffineCoupling("channel", h, w, c, i % 2 == 1, 2 * mid, blocks)
                      for i in range(3)]
            nxt = self._scale(s + 1, scales, blocks, h, w, c // 2, 2 * mid)
            return Scale(steps, nxt)

        def logit(self, u):
            # bijector/logit.go: p = a + (1-2a)u, z = log p - log(1-p),
            # log-det = sum(-log p - log(1-p)) + D log(1-2a).
            a = self.alpha
            p = a + (1 - 2 * a) * u
            log_p, log_1mp = torch.log(p), torch.log(1 - p)
            d = u[0].numel()
            ld = -(log_p + log_1mp).flatten(1).sum(1) + d * math.log(1 - 2 * a)
            return log_p - log_1mp, ld

        def forward(self, u):
            x, ld0 = self.logit(u)
            z, ld = self.body(x)
            return z, ld0 + ld

    class Coupling4(nn.Module):
        """The coupling benchmark: 4 checkerboard couplings (alternating
        masks) on c x h x w inputs, no preprocessing."""

        def __init__(self, mid=64, blocks=2, height=28, width=28, channels=1):
            super().__init__()
            self.steps = nn.ModuleList(
                [AffineCoupling("checkerboard", height, width, channels, i % 2 == 1, mid, blocks)
                 for i in range(4)])

        def forward(self, x):
            ld = x.new_zeros(x.shape[0])
            for step in self.steps:
                x, d = step(x)
                ld = ld + d
            return x.flatten(1), ld

    return dict(RealNVP=RealNVP, Coupling4=Coupling4)


# flowood's Glow presets (model/glow/glow.go), for 28x28x1 images.
GLOW_PRESETS = {
    "cpu": dict(scales=2, steps=8, hidden=16, layers=1),
    "tiny": dict(scales=2, steps=1, hidden=4, layers=1),
}


def build_glow_modules():
    """model/glow: Logit, then per scale a squeeze and K steps of actnorm ->
    plain invertible 1x1 convolution -> affine coupling with a highway
    st-network (nn/highway.go), then the first half of the channels is
    factored out (all scales but the last)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class ActNorm(nn.Module):
        """flow/bijector/actnorm.go: z = (x + bias) * exp(logs) per channel,
        initialised on the first batch to zero mean, unit variance."""

        def __init__(self, c):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(1, c, 1, 1))
            self.logs = nn.Parameter(torch.zeros(1, c, 1, 1))
            self.register_buffer("initialized", torch.zeros(1))

        def forward(self, x):
            if self.training and self.initialized.item() == 0:
                with torch.no_grad():
                    mean = x.mean(dim=(0, 2, 3), keepdim=True)
                    std = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
                    self.bias.copy_(-mean)
                    self.logs.copy_(-torch.log(std + 1e-6))
                    self.initialized.fill_(1)
            z = (x + self.bias) * torch.exp(self.logs)
            hw = x.shape[2] * x.shape[3]
            return z, (self.logs.sum() * hw).expand(x.shape[0])

    class InvConv1x1(nn.Module):
        """flow/bijector/invconv.go, plain: z = x K over channels, log-det
        h*w*log|det K|, K from the QR of a Gaussian matrix."""

        def __init__(self, c):
            super().__init__()
            q, _ = torch.linalg.qr(torch.randn(c, c))
            self.weight = nn.Parameter(q)

        def forward(self, x):
            c = x.shape[1]
            # z[o] = sum_i x[i] K[i, o]: conv2d weight[o, i] = K[i, o]
            z = F.conv2d(x, self.weight.t().reshape(c, c, 1, 1))
            ld = torch.slogdet(self.weight)[1] * x.shape[2] * x.shape[3]
            return z, ld.expand(x.shape[0])

    def conv(cin, cout, k, zero=False):
        m = nn.Conv2d(cin, cout, k, padding=k // 2)
        with torch.no_grad():
            if zero:
                m.weight.zero_()
            else:
                m.weight.normal_(0, 0.05)
            m.bias.zero_()
        return m

    class Highway(nn.Module):
        """nn/highway.go (flows_ood's HighwayNetwork)."""

        def __init__(self, cin, hidden, cout, layers):
            super().__init__()
            self.in_conv = conv(cin, hidden, 3)
            self.conv_h = nn.ModuleList([conv(hidden, hidden, 3) for _ in range(layers)])
            self.conv_t = nn.ModuleList([conv(hidden, hidden, 3) for _ in range(layers)])
            self.out_conv = conv(hidden, cout, 1, zero=True)

        def forward(self, x):
            a = self.in_conv(x)
            for ch, ct in zip(self.conv_h, self.conv_t):
                g = torch.sigmoid(ct(a))
                a = ch(a) * g + a * (1 - g)
            return self.out_conv(a)

    class Coupling(nn.Module):
        """flow/bijector/glowcoupling.go, affine: the st-network sees the
        first half; s = scale * tanh(raw), z = (x + t) * exp(s) on the
        second half."""

        def __init__(self, c, hidden, layers):
            super().__init__()
            self.net = Highway(c // 2, hidden, c, layers)
            self.scale = nn.Parameter(torch.ones(1, c // 2, 1, 1))

        def forward(self, x):
            xid, xch = x.chunk(2, dim=1)
            raw, t = self.net(xid).chunk(2, dim=1)
            s = self.scale * torch.tanh(raw)
            z = torch.cat([xid, (xch + t) * torch.exp(s)], dim=1)
            return z, s.flatten(1).sum(1)

    class Squeeze(nn.Module):
        def forward(self, x):
            n, c, h, w = x.shape
            x = x.view(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
            return x.reshape(n, 4 * c, h // 2, w // 2), None

    class Scale(nn.Module):
        def __init__(self, steps, next_scale):
            super().__init__()
            self.steps = nn.ModuleList(steps)
            self.next = next_scale

        def forward(self, x):
            ld = x.new_zeros(x.shape[0])
            for step in self.steps:
                x, d = step(x)
                if d is not None:
                    ld = ld + d
            n, c = x.shape[0], x.shape[1]
            if self.next is None:
                return x.reshape(n, -1), ld
            out, keep = x[:, : c // 2], x[:, c // 2:]
            zn, ld2 = self.next(keep)
            return torch.cat([out.reshape(n, -1), zn], dim=1), ld + ld2

    class Glow(nn.Module):
        def __init__(self, scales=2, steps=8, hidden=16, layers=1, height=28, width=28,
                     channels=1, constraint=0.9):
            super().__init__()
            self.alpha = (1 - constraint) / 2
            self.body = self._scale(0, scales, steps, hidden, layers, channels)

        def _scale(self, s, scales, k, hidden, layers, c):
            c = 4 * c
            st = [Squeeze()]
            for _ in range(k):
                st += [ActNorm(c), InvConv1x1(c), Coupling(c, hidden, layers)]
            if s == scales - 1:
                return Scale(st, None)
            return Scale(st, self._scale(s + 1, scales, k, hidden, layers, c // 2))

        def forward(self, u):
            a = self.alpha
            p = a + (1 - 2 * a) * u
            log_p, log_1mp = torch.log(p), torch.log(1 - p)
            ld0 = -(log_p + log_1mp).flatten(1).sum(1) + u[0].numel() * math.log(1 - 2 * a)
            z, ld = self.body(log_p - log_1mp)
            return z, ld0 + ld

    return dict(Glow=Glow)


def glow_params_by_hand(scales, steps, hidden, layers, c=1):
    n = 0
    for _ in range(scales):
        c *= 4
        half = c // 2
        highway = (9 * half * hidden + hidden) + layers * 2 * (9 * hidden * hidden + hidden) + (hidden * c + c)
        n += steps * (2 * c + c * c + highway + half)
        c //= 2
    return n


def bench_glow_train(args, preset="cpu", batch=64, warmup=3, steps=20):
    import torch

    mods = build_glow_modules()
    torch.manual_seed(0)
    cfg = GLOW_PRESETS[preset]
    model = mods["Glow"](**cfg)
    n = count_params(model)
    by_hand = glow_params_by_hand(**cfg)
    if n != by_hand:
        raise AssertionError("parameter count %d != %d by hand" % (n, by_hand))
    emit("pytorch_glow_params", "count", n, preset=preset, by_hand=by_hand)
    batches = make_batches(4, batch)
    w, s = steps_for(args, warmup, steps)
    times, cpu, loss, inter = time_train_steps(model, batches, w, s, clip_norm=args.clip_norm)
    emit("pytorch_glow_train_img_per_s", "img/s", batch / statistics.median(times), preset=preset,
         batch=batch, warmup=w, loss_nats=loss, clip_norm=args.clip_norm,
         **time_stats(times, cpu), **inter, **common_extra(args))


def log_prob(model, u):
    z, ld = model(u)
    # log N(z; 0, I) summed over dimensions, plus the log-determinant
    return -0.5 * (z * z).sum(1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + ld


# ---------------------------------------------------------------------------
# Parameter counts by hand (cross-check of the modules above)


def resnet_params(cin, mid, cout, blocks):
    n = 2 * cin                          # in_norm gamma, beta
    n += 9 * (2 * cin) * mid + mid       # in_conv 3x3 on concat(x, -x), bias
    n += mid * mid + mid                 # in_skip 1x1
    per_block = (2 * mid                 # BN
                 + 9 * mid * mid         # conv3x3, no bias
                 + 2 * mid               # BN
                 + 9 * mid * mid + mid   # conv3x3 with bias
                 + mid * mid + mid)      # skip 1x1
    n += blocks * per_block
    n += 2 * mid                         # out_norm
    n += mid * cout + cout               # out_conv 1x1
    return n


def coupling_params(cin, mid, cout, blocks):
    return resnet_params(cin, mid, cout, blocks) + cout // 2  # + per-channel scale


def realnvp_params_by_hand(scales, blocks, mid, c=1):
    total = 0
    for s in range(scales):
        last = s == scales - 1
        total += (4 if last else 3) * coupling_params(c, mid, 2 * c, blocks)
        if last:
            break
        c *= 4
        total += 3 * coupling_params(c // 2, 2 * mid, c, blocks)
        c //= 2
        mid *= 2
    return total


def count_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------
# Benchmarks


def make_batches(n_batches, batch, seed=0):
    """Random 8-bit pixels dequantised to [0, 1): (x + U[0,1)) / 256."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n_batches):
        pix = torch.randint(0, 256, (batch, 1, 28, 28), generator=g).to(torch.float32)
        out.append((pix + torch.rand(pix.shape, generator=g)) / 256.0)
    return out


def time_train_steps(model, batches, warmup, steps, lr=1e-3, clip_norm=0.0,
                     optimizer_step=True):
    """Times full training steps (zero_grad, forward, loss, backward,
    [clip], Adam step); returns per-step wall seconds, per-step CPU seconds
    of the process (all threads), the last loss and Interference fields of
    the timed steps."""
    import torch

    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    times, cpu, loss_v = [], [], float("nan")
    inter = Interference()
    for i in range(warmup + steps):
        if i == warmup:
            inter.start()
        u = batches[i % len(batches)]
        c0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = -log_prob(model, u).mean()
        loss.backward()
        if clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        if optimizer_step:
            opt.step()
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        loss_v = loss.item()
        if i >= warmup:
            times.append(dt)
            cpu.append(dc)
    if not math.isfinite(loss_v):
        raise RuntimeError("non-finite loss %r" % loss_v)
    return times, cpu, loss_v, inter.fields()


def steps_for(args, warmup, steps):
    return (1, 2) if args.quick else (warmup, steps)


def common_extra(args):
    import torch

    return dict(torch=torch.__version__, threads=torch.get_num_threads(),
                loadavg_1m=os.getloadavg()[0])


def time_stats(times, cpu):
    """Extra fields of a timed benchmark: median and min wall time, and the
    median CPU time per step (all threads of this process; with T threads
    fully busy it approaches T times the wall time, and it is less disturbed
    than wall time by other load on a shared machine)."""
    return dict(median_ms=statistics.median(times) * 1e3, min_ms=min(times) * 1e3,
                cpu_ms=statistics.median(cpu) * 1e3, steps=len(times))


def bench_realnvp_train(args, preset="cpu", batch=64, warmup=3, steps=20, prefix="pytorch_realnvp"):
    import torch

    mods = build_modules()
    torch.manual_seed(0)
    cfg = PRESETS[preset]
    model = mods["RealNVP"](**cfg)
    n = count_params(model)
    by_hand = realnvp_params_by_hand(**cfg)
    if n != by_hand:
        raise AssertionError("parameter count %d != %d by hand" % (n, by_hand))
    emit(prefix + "_params", "count", n, preset=preset, by_hand=by_hand)
    batches = make_batches(4, batch)
    w, s = steps_for(args, warmup, steps)
    times, cpu, loss, inter = time_train_steps(model, batches, w, s, clip_norm=args.clip_norm)
    emit(prefix + "_train_img_per_s", "img/s", batch / statistics.median(times), preset=preset,
         batch=batch, warmup=w, loss_nats=loss, clip_norm=args.clip_norm,
         **time_stats(times, cpu), **inter, **common_extra(args))
    if preset == "cpu":
        # forward + backward only, as model/realnvp's BenchmarkTrainStep does
        times, cpu, _, inter = time_train_steps(model, batches, w, s, optimizer_step=False)
        emit(prefix + "_fwdbwd_img_per_s", "img/s", batch / statistics.median(times), preset=preset,
             batch=batch, **time_stats(times, cpu), **inter, **common_extra(args))


def bench_realnvp_eval(args, batch=256, warmup=2, steps=10):
    import torch

    mods = build_modules()
    torch.manual_seed(0)
    model = mods["RealNVP"](**PRESETS["cpu"])
    # a few training steps so the running statistics are not the defaults
    time_train_steps(model, make_batches(2, 64, seed=1), 0, 1 if args.quick else 3)
    model.eval()
    batches = make_batches(2, batch)
    w, s = steps_for(args, warmup, steps)
    times, cpu = [], []
    inter = Interference()
    with torch.no_grad():
        for i in range(w + s):
            if i == w:
                inter.start()
            u = batches[i % len(batches)]
            c0 = time.process_time()
            t0 = time.perf_counter()
            lp = log_prob(model, u)
            dt = time.perf_counter() - t0
            dc = time.process_time() - c0
            if i >= w:
                times.append(dt)
                cpu.append(dc)
    if not torch.isfinite(lp).all():
        raise RuntimeError("non-finite log-likelihood")
    emit("pytorch_realnvp_eval_img_per_s", "img/s", batch / statistics.median(times), preset="cpu",
         batch=batch, warmup=w, **time_stats(times, cpu), **inter.fields(), **common_extra(args))


def bench_coupling4_train(args, batch=64, warmup=3, steps=20):
    import torch

    mods = build_modules()
    torch.manual_seed(0)
    model = mods["Coupling4"](mid=64, blocks=2)
    n = count_params(model)
    by_hand = 4 * coupling_params(1, 64, 2, 2)
    if n != by_hand:
        raise AssertionError("parameter count %d != %d by hand" % (n, by_hand))
    emit("pytorch_coupling4_params", "count", n, by_hand=by_hand)
    batches = make_batches(4, batch)
    w, s = steps_for(args, warmup, steps)
    times, cpu, loss, inter = time_train_steps(model, batches, w, s, clip_norm=args.clip_norm)
    med = statistics.median(times)
    extra = dict(batch=batch, warmup=w, loss_nats=loss, clip_norm=args.clip_norm,
                 **time_stats(times, cpu), **inter, **common_extra(args))
    emit("pytorch_coupling4_train_ms_per_step", "ms", med * 1e3, **extra)
    emit("pytorch_coupling4_train_img_per_s", "img/s", batch / med, **extra)


def bench_realnvp_paper_train(args):
    bench_realnvp_train(args, preset="paper", batch=32, warmup=1, steps=5,
                        prefix="pytorch_realnvp_paper")


# GEMM of the im2col convolution in a mid-64 3x3 layer at batch 64:
# (64*28*28) x (9*64) times (9*64) x 64.
GEMM_M, GEMM_K, GEMM_N = 50176, 576, 64


def build_tabular():
    """The tabular RealNVP of model/tabular (App. O.1): couplings with
    alternating half masks over the feature vector; each st-network sees
    the conditioning half and predicts s and t for the other half through
    Linear, ReLU, layers x (Linear, ReLU), Linear; s = scale * tanh(raw)."""
    import torch
    import torch.nn as nn

    class TabularCoupling(nn.Module):
        def __init__(self, d, reverse, hidden, layers):
            super().__init__()
            k = d // 2
            self.reverse, self.k = reverse, k
            n_id, n_ch = (d - k, k) if reverse else (k, d - k)
            mods = [nn.Linear(n_id, hidden), nn.ReLU()]
            for _ in range(layers):
                mods += [nn.Linear(hidden, hidden), nn.ReLU()]
            mods.append(nn.Linear(hidden, 2 * n_ch))
            self.net = nn.Sequential(*mods)
            self.scale = nn.Parameter(torch.ones(n_ch))

        def forward(self, x):
            a, b = x[:, :self.k], x[:, self.k:]
            x_id, x_ch = (b, a) if self.reverse else (a, b)
            raw, t = self.net(x_id).chunk(2, dim=1)
            s = self.scale * torch.tanh(raw)
            z_ch = (x_ch + t) * torch.exp(s)
            z = torch.cat((z_ch, x_id) if self.reverse else (x_id, z_ch), dim=1)
            return z, s.sum(1)

    class TabularRealNVP(nn.Module):
        def __init__(self, d=43, couplings=8, hidden=256, layers=1):
            super().__init__()
            self.steps = nn.ModuleList(TabularCoupling(d, i % 2 == 1, hidden, layers) for i in range(couplings))

        def forward(self, x):
            ld = 0
            for c in self.steps:
                x, d = c(x)
                ld = ld + d
            return x, ld

    return TabularRealNVP


def tabular_params_by_hand(d=43, couplings=8, hidden=256, layers=1):
    n = 0
    for i in range(couplings):
        k = d // 2
        n_id, n_ch = (d - k, k) if i % 2 == 1 else (k, d - k)
        n += (n_id + 1) * hidden + layers * (hidden + 1) * hidden + (hidden + 1) * 2 * n_ch + n_ch
    return n


def bench_tabular_train(args, batch=32, features=43, warmup=50, steps=300):
    """Training steps of the tabular model at App. O's UCI size (8
    couplings, 1 x 256 hidden units, 43 features as MINIBOONE, batch 32),
    AdamW with weight decay 1e-3, on standard normal features (the time
    does not depend on the values)."""
    import torch

    torch.manual_seed(0)
    model = build_tabular()(d=features)
    n = count_params(model)
    by_hand = tabular_params_by_hand(d=features)
    if n != by_hand:
        raise AssertionError("parameter count %d != %d by hand" % (n, by_hand))
    emit("pytorch_tabular_params", "count", n, by_hand=by_hand)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randn(batch, features, generator=g) for _ in range(8)]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    w, s = steps_for(args, warmup, steps)
    model.train()
    times, cpu, loss_v = [], [], float("nan")
    inter = Interference()
    for i in range(w + s):
        if i == w:
            inter.start()
        x = batches[i % len(batches)]
        c0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = -log_prob(model, x).mean()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        dc = time.process_time() - c0
        loss_v = loss.item()
        if i >= w:
            times.append(dt)
            cpu.append(dc)
    if not math.isfinite(loss_v):
        raise RuntimeError("non-finite loss %r" % loss_v)
    emit("pytorch_tabular_train_img_per_s", "img/s", batch / statistics.median(times), batch=batch,
         features=features, warmup=w, loss_nats=loss_v, **time_stats(times, cpu), **inter.fields(),
         **common_extra(args))


def openblas_info():
    """Version/config and core type of the OpenBLAS mapped into this
    process, read through its own API; None if no OpenBLAS is loaded."""
    import ctypes

    path = None
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            if "openblas" in os.path.basename(p):
                path = p
                break
    if path is None:
        return None
    lib = ctypes.CDLL(path)
    info = {"path": path}
    for fn, key in (("openblas_get_config", "config"), ("openblas_get_corename", "corename")):
        try:
            f = getattr(lib, fn)
            f.restype = ctypes.c_char_p
            info[key] = f().decode()
        except AttributeError:
            pass
    try:
        info["num_threads"] = lib.openblas_get_num_threads()
    except AttributeError:
        pass
    return info


def time_gemm(fn, reps):
    times, cpu = [], []
    fn()  # warm-up: page in, spin up threads
    inter = Interference()
    for _ in range(reps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return times, cpu, inter.fields()


def bench_sgemm_numpy(args, unset=()):
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((GEMM_M, GEMM_K), dtype=np.float32)
    b = rng.standard_normal((GEMM_K, GEMM_N), dtype=np.float32)
    c = np.empty((GEMM_M, GEMM_N), dtype=np.float32)
    times, cpu, inter = time_gemm(lambda: np.matmul(a, b, out=c), 2 if args.quick else 10)
    med = statistics.median(times)
    flops = 2.0 * GEMM_M * GEMM_N * GEMM_K
    info = openblas_info() or {}
    emit("openblas_sgemm_gflops", "GFLOP/s", flops / med / 1e9,
         shape="(%dx%d)@(%dx%d) float32" % (GEMM_M, GEMM_K, GEMM_K, GEMM_N),
         median_ms=med * 1e3, reps=len(times), numpy=np.__version__,
         gflop_per_cpu_s=flops / statistics.median(cpu) / 1e9, loadavg_1m=os.getloadavg()[0],
         **inter,
         blas=info.get("config", "unknown (no OpenBLAS mapped)"),
         blas_path=info.get("path"), openblas_corename=info.get("corename"),
         openblas_threads=info.get("num_threads"),
         OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS"),
         unset_env=dict(unset))


def bench_sgemm_torch(args):
    import torch

    g = torch.Generator().manual_seed(0)
    a = torch.randn(GEMM_M, GEMM_K, generator=g)
    b = torch.randn(GEMM_K, GEMM_N, generator=g)
    c = torch.empty(GEMM_M, GEMM_N)
    times, cpu, inter = time_gemm(lambda: torch.mm(a, b, out=c), 2 if args.quick else 10)
    med = statistics.median(times)
    flops = 2.0 * GEMM_M * GEMM_N * GEMM_K
    info = openblas_info() or {}
    emit("torch_sgemm_gflops", "GFLOP/s", flops / med / 1e9,
         shape="(%dx%d)@(%dx%d) float32" % (GEMM_M, GEMM_K, GEMM_K, GEMM_N),
         median_ms=med * 1e3, reps=len(times), blas=info.get("config", "unknown"),
         gflop_per_cpu_s=flops / statistics.median(cpu) / 1e9, **inter,
         openblas_corename=info.get("corename"), openblas_threads=info.get("num_threads"),
         OPENBLAS_CORETYPE=os.environ.get("OPENBLAS_CORETYPE"),
         **common_extra(args))


# ---------------------------------------------------------------------------


def run_one(args, name):
    # Thread counts must be in the environment before numpy/torch load
    # their BLAS and OpenMP runtimes.
    t = str(args.threads)
    os.environ["OPENBLAS_NUM_THREADS"] = t
    os.environ["OMP_NUM_THREADS"] = t
    unset = {}
    if name == "sgemm_numpy":
        # Workarounds for old OpenBLAS builds may be set machine-wide; the
        # raw GEMM number is measured with OpenBLAS's own core detection.
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if k in os.environ:
                unset[k] = os.environ.pop(k)
    if name != "sgemm_numpy":
        import torch

        torch.set_num_threads(args.threads)
    rss_base = peak_rss_mib()
    if name == "realnvp_train":
        bench_realnvp_train(args)
    elif name == "realnvp_eval":
        bench_realnvp_eval(args)
    elif name == "coupling4_train":
        bench_coupling4_train(args)
    elif name == "realnvp_paper_train":
        bench_realnvp_paper_train(args)
    elif name == "glow_train":
        bench_glow_train(args)
    elif name == "sgemm_numpy":
        bench_sgemm_numpy(args, unset)
    elif name == "sgemm_torch":
        bench_sgemm_torch(args)
    elif name == "tabular_train":
        bench_tabular_train(args)
    else:
        raise SystemExit("unknown benchmark %r (known: %s)" % (name, ", ".join(BENCHES)))
    emit(RSS_NAMES[name], "MiB", round(peak_rss_mib(), 1),
         after_imports_mib=round(rss_base, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch and OpenBLAS threads (default 2)")
    ap.add_argument("--quick", action="store_true", help="a couple of steps per benchmark (smoke test)")
    ap.add_argument("--only", metavar="NAME", help="run one benchmark in this process: " + ", ".join(BENCHES))
    ap.add_argument("--skip", metavar="NAMES", default="", help="comma-separated benchmarks to leave out")
    ap.add_argument("--clip-norm", type=float, default=0.0,
                    help="clip the global gradient norm in training steps (flowood's train loop uses 100; default off)")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    if args.only:
        run_one(args, args.only)
        return
    load = os.getloadavg()[0]
    if load > 0.5:
        print("bench.py: load average %.1f before starting; other work on this machine "
              "will slow the numbers down (see cpu_ms in the output)" % load, file=sys.stderr, flush=True)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    failed = []
    for name in BENCHES:
        if name in skip:
            continue
        cmd = [sys.executable, os.path.abspath(__file__), "--only", name,
               "--threads", str(args.threads), "--clip-norm", str(args.clip_norm)]
        if args.quick:
            cmd.append("--quick")
        # stdout passes straight through: one JSON object per line
        rc = subprocess.call(cmd)
        if rc != 0:
            failed.append(name)
            print("bench.py: %s failed (exit %d)" % (name, rc), file=sys.stderr, flush=True)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
