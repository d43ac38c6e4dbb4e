"""The PyTorch side of the benchmarks: a pure-PyTorch forward of the bench's own for the GPT-2
and Llama families (Llama: RMSNorm, rotary positions, grouped-query attention, SwiGLU), with its
own KV cache, reading a qkv model file (h5py), float32, no grad. Prints one JSON object: the
time to load the weights (h5py to torch tensors, in the process); prefill tokens/s for each T (one sequence to the last position's logits); decode tokens/s for N
new tokens after a P-token prompt; with --batch B --batch-pos T, tokens/s of B sequences of T
tokens through the embedding and every block in one batched forward (no unembedding, as
qkv's block).
Usage: torch_forward.py MODEL.h5 --device cpu|cuda --threads N [--prefill 64,256] [--decode 128]
       [--batch 8 --batch-pos 128]"""
import argparse
import json
import math
import statistics
import time

import h5py
import torch


def load(path, device):
    f = h5py.File(path, "r")
    c = f["config"].attrs
    cfg = {k: int(c[k]) for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "vocab_size")}
    cfg["kv_heads"] = int(c.get("n_kv_heads", cfg["n_heads"]))
    cfg["eps"] = float(c["ln_eps"])
    text = lambda v: v.decode() if isinstance(v, bytes) else str(v)
    cfg["arch"] = text(c["arch"])
    if cfg["arch"] not in ("gpt2", "llama"):
        raise SystemExit(f"torch_forward: family {cfg['arch']} is not written here (gpt2, llama)")
    if cfg["arch"] == "llama":
        cfg["theta"], cfg["rot"] = float(c["rope_theta"]), int(c["rotary_dim"])
        if text(c.get("rope_scaling", "none")) != "none":
            raise SystemExit("torch_forward: rope scaling is not written here")
    t = lambda name: torch.tensor(f[name][()], device=device)
    opt = lambda name: t(name) if name in f else None
    H, KV, D, dh = cfg["n_heads"], cfg["kv_heads"], cfg["d_model"], cfg["d_head"]
    W = {"W_E": t("embed/W_E"), "W_pos": opt("pos_embed/W_pos"),
         "ln_f": (t("ln_final/w"), opt("ln_final/b")),
         "W_U": t("unembed/W_U"), "b_U": opt("unembed/b_U"), "blocks": []}
    for i in range(cfg["n_layers"]):
        g = f"blocks/{i}/"
        # W_Q [head, d_model, d_head], W_K and W_V [kv_head, ...]: one [d_model, (H + 2 KV) d_head]
        W_QKV = torch.cat([t(g + f"attn/W_{n}").permute(1, 0, 2).reshape(D, -1) for n in "QKV"], 1)
        b_QKV = torch.cat([t(g + f"attn/b_{n}").reshape(-1) for n in "QKV"]) if g + "attn/b_Q" in f else None
        W["blocks"].append({"ln1": (t(g + "ln1/w"), opt(g + "ln1/b")), "ln2": (t(g + "ln2/w"), opt(g + "ln2/b")),
                            "W_QKV": W_QKV, "b_QKV": b_QKV, "W_O": t(g + "attn/W_O").reshape(H * dh, D),
                            "b_O": opt(g + "attn/b_O"), "W_gate": opt(g + "mlp/W_gate"),
                            "W_in": t(g + "mlp/W_in"), "b_in": opt(g + "mlp/b_in"),
                            "W_out": t(g + "mlp/W_out"), "b_out": opt(g + "mlp/b_out")})
    return cfg, W


def norm(cfg, x, wb):
    w, b = wb
    if cfg["arch"] == "gpt2":
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, cfg["eps"])
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + cfg["eps"]) * w


def plus(x, b):
    return x if b is None else x + b


def rotary(cfg, x, pos0):
    """x [batch, pos, head, d_head]: the first rot dimensions turned by position (rotate-half)."""
    rot, T = cfg["rot"], x.shape[1]
    inv = 1.0 / cfg["theta"] ** (torch.arange(0, rot, 2, dtype=torch.float32, device=x.device) / rot)
    ang = torch.arange(pos0, pos0 + T, dtype=torch.float32, device=x.device)[:, None] * inv[None]
    ang = torch.cat([ang, ang], -1)[:, None]  # [pos, 1, rot]
    cos, sin = ang.cos(), ang.sin()
    r, rest = x[..., :rot], x[..., rot:]
    half = torch.cat([-r[..., rot // 2:], r[..., :rot // 2]], -1)
    return torch.cat([r * cos + half * sin, rest], -1)


def forward(cfg, W, tokens, cache, pos0, logits=True):
    """tokens [batch, T] at positions pos0..; cache: per layer (K, V) [batch, n_ctx, kv_head,
    d_head], or None (self-attention over the T tokens); the last position's logits [batch, 1,
    vocab], or with logits=False the residual stream after the last block."""
    H, KV, dh = cfg["n_heads"], cfg["kv_heads"], cfg["d_head"]
    B, T = tokens.shape
    x = W["W_E"][tokens]  # [batch, pos, d_model]
    if W["W_pos"] is not None:
        x = x + W["W_pos"][pos0:pos0 + T]
    for i, b in enumerate(W["blocks"]):
        h = norm(cfg, x, b["ln1"])
        q, k, v = plus(h @ b["W_QKV"], b["b_QKV"]).split([H * dh, KV * dh, KV * dh], dim=-1)
        q, k, v = q.view(B, T, H, dh), k.view(B, T, KV, dh), v.view(B, T, KV, dh)
        if cfg["arch"] == "llama":
            q, k = rotary(cfg, q, pos0), rotary(cfg, k, pos0)
        if cache is not None:
            K, V = cache[i]
            K[:, pos0:pos0 + T], V[:, pos0:pos0 + T] = k, v
            k, v = K[:, :pos0 + T], V[:, :pos0 + T]
        keys = k.transpose(1, 2).repeat_interleave(H // KV, dim=1)  # [batch, head, key_pos, d_head]
        vals = v.transpose(1, 2).repeat_interleave(H // KV, dim=1)
        scores = q.transpose(1, 2) @ keys.transpose(-1, -2) / math.sqrt(dh)  # [batch, head, pos, key_pos]
        mask = torch.ones(T, pos0 + T, dtype=torch.bool, device=x.device).tril(pos0)
        z = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ vals
        x = x + plus(z.transpose(1, 2).reshape(B, T, H * dh) @ b["W_O"], b["b_O"])
        h = norm(cfg, x, b["ln2"])
        if b["W_gate"] is not None:
            a = torch.nn.functional.silu(h @ b["W_gate"]) * (h @ b["W_in"])
        else:
            a = torch.nn.functional.gelu(plus(h @ b["W_in"], b["b_in"]), approximate="tanh")
        x = x + plus(a @ b["W_out"], b["b_out"])
    if not logits:
        return x
    return plus(norm(cfg, x[:, -1:], W["ln_f"]) @ W["W_U"], W["b_U"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefill", default="64,256")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--batch-pos", type=int, default=128)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    cfg, W = load(a.model, dev)
    sync()
    load_s = time.perf_counter() - t0
    KV, dh = cfg["kv_heads"], cfg["d_head"]
    new_cache = lambda: [(torch.zeros(1, cfg["n_ctx"], KV, dh, device=dev), torch.zeros(1, cfg["n_ctx"], KV, dh, device=dev))
                         for _ in range(cfg["n_layers"])]
    out = {"device": a.device, "threads": a.threads, "torch": torch.__version__, "load_s": load_s, "prefill": {}, "decode": {}}
    gen = torch.Generator().manual_seed(0)
    tokens = lambda *shape: torch.randint(0, cfg["vocab_size"], shape, generator=gen).to(dev)

    def timed(fn):
        fn()  # warm-up
        times = []
        for _ in range(a.runs):
            sync(); t0 = time.perf_counter()
            fn()
            sync(); times.append(time.perf_counter() - t0)
        return statistics.median(times), min(times), max(times)

    with torch.no_grad():
        for T in [int(x) for x in a.prefill.split(",") if x]:
            toks = tokens(1, T)
            s, lo, hi = timed(lambda: forward(cfg, W, toks, new_cache(), 0))
            out["prefill"][T] = {"tokens_per_s": T / s, "min_s": lo, "max_s": hi}
        if a.batch:
            toks = tokens(a.batch, a.batch_pos)
            s, lo, hi = timed(lambda: forward(cfg, W, toks, None, 0, logits=False))
            out["batched"] = {"batch": a.batch, "pos": a.batch_pos, "tokens_per_s": a.batch * a.batch_pos / s,
                              "min_s": lo, "max_s": hi}
        if a.decode:
            toks = tokens(1, a.prompt)
            rates = []
            for _ in range(a.runs):
                cache = new_cache()
                logits = forward(cfg, W, toks, cache, 0)
                sync(); t0 = time.perf_counter()
                pos = a.prompt
                for _ in range(a.decode):
                    logits = forward(cfg, W, logits.argmax(-1), cache, pos)
                    pos += 1
                sync(); rates.append(a.decode / (time.perf_counter() - t0))
            out["decode"] = {"prompt": a.prompt, "new_tokens": a.decode, "tokens_per_s": statistics.median(rates),
                             "min": min(rates), "max": max(rates)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
