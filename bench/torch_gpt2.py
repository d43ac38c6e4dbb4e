"""The PyTorch side of the benchmarks: a pure-PyTorch GPT-2 of the bench's own, with its own
KV cache, reading a qkv model file (h5py), float32, no grad. Prints one JSON object:
prefill tokens/s for each T, and decode tokens/s for N new tokens after a P-token prompt.
Usage: torch_gpt2.py MODEL.h5 --device cpu|cuda --threads N [--prefill 64,256] [--decode 128]"""
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
    cfg["eps"] = float(c["ln_eps"])
    t = lambda name: torch.tensor(f[name][()], device=device)
    W = {"W_E": t("embed/W_E"), "W_pos": t("pos_embed/W_pos"), "ln_f": (t("ln_final/w"), t("ln_final/b")),
         "W_U": t("unembed/W_U"), "b_U": t("unembed/b_U"), "blocks": []}
    H, D, dh = cfg["n_heads"], cfg["d_model"], cfg["d_head"]
    for i in range(cfg["n_layers"]):
        g = f"blocks/{i}/"
        W_QKV = torch.cat([t(g + f"attn/W_{n}").permute(1, 0, 2).reshape(D, H * dh) for n in "QKV"], 1)
        b_QKV = torch.cat([t(g + f"attn/b_{n}").reshape(-1) for n in "QKV"])
        W["blocks"].append({"ln1": (t(g + "ln1/w"), t(g + "ln1/b")), "ln2": (t(g + "ln2/w"), t(g + "ln2/b")),
                            "W_QKV": W_QKV, "b_QKV": b_QKV, "W_O": t(g + "attn/W_O").reshape(H * dh, D),
                            "b_O": t(g + "attn/b_O"), "W_in": t(g + "mlp/W_in"), "b_in": t(g + "mlp/b_in"),
                            "W_out": t(g + "mlp/W_out"), "b_out": t(g + "mlp/b_out")})
    return cfg, W


def forward(cfg, W, tokens, cache, pos0):
    """tokens [T] at positions pos0..; cache: per layer (K, V) [n_ctx, H, dh]; last logits."""
    H, dh, eps = cfg["n_heads"], cfg["d_head"], cfg["eps"]
    T = tokens.shape[0]
    x = W["W_E"][tokens] + W["W_pos"][pos0:pos0 + T]
    for i, b in enumerate(W["blocks"]):
        h = torch.nn.functional.layer_norm(x, (x.shape[-1],), *b["ln1"], eps)
        q, k, v = (h @ b["W_QKV"] + b["b_QKV"]).split(H * dh, dim=-1)
        K, V = cache[i]
        K[pos0:pos0 + T] = k.view(T, H, dh)
        V[pos0:pos0 + T] = v.view(T, H, dh)
        keys, vals = K[:pos0 + T].transpose(0, 1), V[:pos0 + T].transpose(0, 1)  # [H, Tk, dh]
        qh = q.view(T, H, dh).transpose(0, 1)  # [H, T, dh]
        scores = qh @ keys.transpose(1, 2) / math.sqrt(dh)
        mask = torch.ones(T, pos0 + T, dtype=torch.bool, device=x.device).tril(pos0)
        z = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ vals
        x = x + z.transpose(0, 1).reshape(T, H * dh) @ b["W_O"] + b["b_O"]
        h = torch.nn.functional.layer_norm(x, (x.shape[-1],), *b["ln2"], eps)
        x = x + torch.nn.functional.gelu(h @ b["W_in"] + b["b_in"], approximate="tanh") @ b["W_out"] + b["b_out"]
    h = torch.nn.functional.layer_norm(x[-1:], (x.shape[-1],), *W["ln_f"], eps)
    return h @ W["W_U"] + W["b_U"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prefill", default="64,256")
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    cfg, W = load(a.model, dev)
    H, dh = cfg["n_heads"], cfg["d_head"]
    new_cache = lambda: [(torch.zeros(cfg["n_ctx"], H, dh, device=dev), torch.zeros(cfg["n_ctx"], H, dh, device=dev))
                         for _ in range(cfg["n_layers"])]
    out = {"device": a.device, "threads": a.threads, "torch": torch.__version__, "prefill": {}, "decode": {}}
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for T in [int(x) for x in a.prefill.split(",") if x]:
            toks = torch.randint(0, cfg["vocab_size"], (T,), generator=gen).to(dev)
            forward(cfg, W, toks, new_cache(), 0)  # warm-up
            times = []
            for _ in range(a.runs):
                cache = new_cache()
                sync(); t0 = time.perf_counter()
                forward(cfg, W, toks, cache, 0)
                sync(); times.append(time.perf_counter() - t0)
            out["prefill"][T] = {"tokens_per_s": T / statistics.median(times), "min_s": min(times), "max_s": max(times)}
        toks = torch.randint(0, cfg["vocab_size"], (a.prompt,), generator=gen).to(dev)
        rates = []
        for _ in range(a.runs):
            cache = new_cache()
            logits = forward(cfg, W, toks, cache, 0)
            sync(); t0 = time.perf_counter()
            pos = a.prompt
            for _ in range(a.decode):
                nxt = logits.argmax(-1)
                logits = forward(cfg, W, nxt, cache, pos)
                pos += 1
            sync(); rates.append(a.decode / (time.perf_counter() - t0))
        out["decode"] = {"prompt": a.prompt, "new_tokens": a.decode, "tokens_per_s": statistics.median(rates),
                         "min": min(rates), "max": max(rates)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
