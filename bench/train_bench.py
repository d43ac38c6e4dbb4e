"""Training speed: qkv's `train` against the same training step in PyTorch (Debian's
python3-torch, float32, autograd, torch.optim.AdamW, the same model, batch, context, gradient
clipping), measured in the same run on the same machine. A benchmark, not a test: it asserts
nothing about time.

Usage: /usr/bin/python3 bench/train_bench.py MODEL.h5 CORPUS.txt [--steps 30] [--threads 2]
  [--batch 16] [--context 128]
Tokens/s = batch x context x steps / time of those steps (the first 5 steps of each are
warm-up and not timed); FLOPs are not counted here."""
import argparse
import json
import math
import os
import re
import subprocess
import tempfile
import time

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("QKV_BIN", os.path.join(HERE, "..", "build", "tools"))


def qkv_tok_s(model, corpus, a):
    """Runs `train` twice (5 steps, then 5 + steps) and takes the difference of their times."""
    times = []
    with tempfile.TemporaryDirectory() as d:
        for steps in (5, 5 + a.steps):
            t0 = time.perf_counter()
            subprocess.run([os.path.join(BIN, "train"), "--model", model, "-f", corpus, "-o", f"{d}/o.h5",
                            "--steps", str(steps), "--batch", str(a.batch), "--context", str(a.context),
                            "--threads", str(a.threads), "--eval-every", "0", "--quiet"], check=True)
            times.append(time.perf_counter() - t0)
    # both runs pay the same start-up and final evaluation; the difference is a.steps steps
    return a.batch * a.context * a.steps / (times[1] - times[0])


def torch_tok_s(model, corpus, a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    f = h5py.File(model, "r")
    c = f["config"].attrs
    L, D, H, dh, M, V = (int(c[k]) for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "vocab_size"))
    eps = float(c["ln_eps"])
    P = lambda name: torch.nn.Parameter(torch.tensor(f[name][()]))
    W_E, W_pos = P("embed/W_E"), P("pos_embed/W_pos")
    blocks = []
    for i in range(L):
        g = f"blocks/{i}/"
        blocks.append({
            "ln1w": P(g + "ln1/w"), "ln1b": P(g + "ln1/b"), "ln2w": P(g + "ln2/w"), "ln2b": P(g + "ln2/b"),
            "W_QKV": torch.nn.Parameter(torch.cat([torch.tensor(f[g + f"attn/W_{n}"][()]).permute(1, 0, 2).reshape(D, H * dh) for n in "QKV"], 1)),
            "b_QKV": torch.nn.Parameter(torch.cat([torch.tensor(f[g + f"attn/b_{n}"][()]).reshape(-1) for n in "QKV"])),
            "W_O": torch.nn.Parameter(torch.tensor(f[g + "attn/W_O"][()]).reshape(H * dh, D)), "b_O": P(g + "attn/b_O"),
            "W_in": P(g + "mlp/W_in"), "b_in": P(g + "mlp/b_in"), "W_out": P(g + "mlp/W_out"), "b_out": P(g + "mlp/b_out")})
    lnf = (P("ln_final/w"), P("ln_final/b"))
    params = [W_E, W_pos, *lnf] + [p for b in blocks for p in b.values()]
    decay = [p for p in params if p.dim() >= 2]
    nodecay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    B, T = a.batch, a.context
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    gelu = lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    ln = lambda x, w, b: torch.nn.functional.layer_norm(x, (D,), w, b, eps)

    def loss_of(x, y):
        h = W_E[x] + W_pos[:T]
        for b in blocks:
            qkv = ln(h, b["ln1w"], b["ln1b"]) @ b["W_QKV"] + b["b_QKV"]
            q, k, v = (t.view(B, T, H, dh).transpose(1, 2) for t in qkv.split(H * dh, dim=2))
            s = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
            p = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1)
            z = (p @ v).transpose(1, 2).reshape(B, T, H * dh)
            h = h + z @ b["W_O"] + b["b_O"]
            h = h + gelu(ln(h, b["ln2w"], b["ln2b"]) @ b["W_in"] + b["b_in"]) @ b["W_out"] + b["b_out"]
        logits = ln(h, *lnf) @ W_E.T
        return torch.nn.functional.cross_entropy(logits.view(-1, V), y.view(-1))

    text = open(corpus, "rb").read()
    rng = np.random.default_rng(0)
    ids = torch.tensor(np.frombuffer(text, dtype=np.uint8).astype(np.int64) % V)  # speed only: any ids
    t0 = None
    for step in range(5 + a.steps):
        if step == 5:
            t0 = time.perf_counter()
        starts = rng.integers(0, len(ids) - T - 1, B)
        x = torch.stack([ids[s:s + T] for s in starts])
        y = torch.stack([ids[s + 1:s + T + 1] for s in starts])
        opt.zero_grad(set_to_none=True)
        loss_of(x, y).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return B * T * a.steps / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("corpus")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--context", type=int, default=128)
    a = ap.parse_args()
    q = qkv_tok_s(a.model, a.corpus, a)
    t = torch_tok_s(a.model, a.corpus, a)
    res = {"qkv_tok_s": round(q), "torch_tok_s": round(t), "ratio": round(q / t, 2), "steps": a.steps,
           "batch": a.batch, "context": a.context, "threads": a.threads, "torch": torch.__version__}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
