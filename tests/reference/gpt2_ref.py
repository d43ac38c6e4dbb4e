"""A small pure-PyTorch GPT-2: the independent reference the tests compare qkv against.

Written from the GPT-2 architecture (pre-LayerNorm blocks, causal multi-head attention, GELU
with the tanh approximation, tied unembedding), in float64, with Hugging Face's parameter names.
It shares no code with qkv: it reads weights from a Hugging Face style dict or from a qkv
model file (through h5py), and it writes Hugging Face checkpoint folders (safetensors by hand).
"""
import json
import math
import os
import shutil
import struct

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


class GPT2:
    """cfg: n_layer, n_embd, n_head, n_positions, vocab_size, n_inner, layer_norm_epsilon.
    sd: Hugging Face names (wte.weight, h.0.attn.c_attn.weight, ...) as float64 tensors."""

    def __init__(self, cfg, sd):
        self.cfg = cfg
        self.sd = {k: torch.as_tensor(np.asarray(v), dtype=torch.float64) for k, v in sd.items()}

    def attention(self, i, x, ctx=None, causal=True, cache=None, hook=lambda name, t: t):
        """hook(site, tensor) -> tensor: an intervention at q, k, v, pattern, z, head_out, attn_out
        (TransformerLens' hook points; q, k, v [batch, pos, head, d_head], pattern [batch, head,
        query, key])."""
        c, sd = self.cfg, self.sd
        H, D = c["n_head"], c["n_embd"]
        dh = D // H
        p = f"h.{i}.attn."
        W, b = sd[p + "c_attn.weight"], sd[p + "c_attn.bias"]
        h = layer_norm(x, sd[f"h.{i}.ln_1.weight"], sd[f"h.{i}.ln_1.bias"], c["layer_norm_epsilon"])
        src = h if ctx is None else layer_norm(ctx, sd[f"h.{i}.ln_1.weight"], sd[f"h.{i}.ln_1.bias"],
                                               c["layer_norm_epsilon"])
        q = h @ W[:, :D] + b[:D]
        k = src @ W[:, D:2 * D] + b[D:2 * D]
        v = src @ W[:, 2 * D:] + b[2 * D:]
        B, T, _ = q.shape
        Bk, Tk, _ = k.shape
        qh = hook("q", q.view(B, T, H, dh))
        k, v = hook("k", k.view(Bk, Tk, H, dh)).reshape(Bk, Tk, D), hook("v", v.view(Bk, Tk, H, dh)).reshape(Bk, Tk, D)
        kh = k.view(Bk, Tk, H, dh).expand(B, Tk, H, dh)
        vh = v.view(Bk, Tk, H, dh).expand(B, Tk, H, dh)
        scores = torch.einsum("bqhd,bkhd->bhqk", qh, kh) / math.sqrt(dh)
        if causal:
            mask = torch.ones(T, Tk, dtype=torch.bool).tril(Tk - T)
            scores = scores.masked_fill(~mask, float("-inf"))
        pattern = hook("pattern", torch.softmax(scores, dim=-1))
        z = hook("z", torch.einsum("bhqk,bkhd->bqhd", pattern, vh))
        W_O = sd[p + "c_proj.weight"].view(H, dh, D)
        head_out = torch.einsum("bqhd,hdm->bqhm", z, W_O)
        hooked = hook("head_out", head_out)
        if hooked is head_out:
            out = z.reshape(B, T, D) @ sd[p + "c_proj.weight"] + sd[p + "c_proj.bias"]
        else:
            head_out = hooked
            out = head_out.sum(2) + sd[p + "c_proj.bias"]
        out = hook("attn_out", out)
        if cache is not None:
            cache.update(scores=scores, pattern=pattern, q=qh, k=k.view(Bk, Tk, H, dh),
                         v=v.view(Bk, Tk, H, dh), z=z, head_out=head_out, out=out)
        return x + out

    def mlp(self, i, x, cache=None, hook=lambda name, t: t):
        c, sd = self.cfg, self.sd
        h = layer_norm(x, sd[f"h.{i}.ln_2.weight"], sd[f"h.{i}.ln_2.bias"], c["layer_norm_epsilon"])
        pre = hook("mlp_pre", h @ sd[f"h.{i}.mlp.c_fc.weight"] + sd[f"h.{i}.mlp.c_fc.bias"])
        post = hook("mlp_post", gelu_new(pre))
        if cache is not None:
            cache.update(pre=pre, post=post)
        return x + hook("mlp_out", post @ sd[f"h.{i}.mlp.c_proj.weight"] + sd[f"h.{i}.mlp.c_proj.bias"])

    def embed(self, tokens):
        t = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        T = t.shape[1]
        return self.sd["wte.weight"][t] + self.sd["wpe.weight"][:T]

    def logits(self, x):
        sd = self.sd
        h = layer_norm(x, sd["ln_f.weight"], sd["ln_f.bias"], self.cfg["layer_norm_epsilon"])
        return h @ sd["wte.weight"].T


def random_hf_state(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    D, F, V, N = cfg["n_embd"], cfg["n_inner"], cfg["vocab_size"], cfg["n_positions"]

    def r(*shape, std=0.02):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * std).float()

    sd = {"wte.weight": r(V, D), "wpe.weight": r(N, D), "ln_f.weight": 1 + r(D, std=0.1),
          "ln_f.bias": r(D, std=0.1)}
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        sd.update({p + "ln_1.weight": 1 + r(D, std=0.1), p + "ln_1.bias": r(D, std=0.1),
                   p + "attn.c_attn.weight": r(D, 3 * D, std=0.1), p + "attn.c_attn.bias": r(3 * D),
                   p + "attn.c_proj.weight": r(D, D, std=0.1), p + "attn.c_proj.bias": r(D),
                   p + "ln_2.weight": 1 + r(D, std=0.1), p + "ln_2.bias": r(D, std=0.1),
                   p + "mlp.c_fc.weight": r(D, F, std=0.1), p + "mlp.c_fc.bias": r(F),
                   p + "mlp.c_proj.weight": r(F, D, std=0.1), p + "mlp.c_proj.bias": r(D)})
    return sd


def to_bytes(t, dtype):
    """A tensor's bytes in a safetensors dtype (F32, F16, BF16), and its value as stored."""
    if dtype == "BF16":
        b = t.to(torch.bfloat16)
        return b.view(torch.int16).numpy().tobytes(), b.to(torch.float64)
    a = np.ascontiguousarray(t.numpy().astype({"F32": np.float32, "F16": np.float16}[dtype]))
    return a.tobytes(), torch.as_tensor(a.astype(np.float64))


def save_safetensors(path, tensors, dtype):
    """Writes the safetensors format by hand: u64 header length, JSON header, raw data. Returns
    the tensors as stored (float64)."""
    header, blobs, off, stored = {"__metadata__": {"format": "pt"}}, [], 0, {}
    for name, t in tensors.items():
        raw, stored[name] = to_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    return stored


def write_hf_dir(path, cfg, sd, dtype="F32", prefix="transformer."):
    """A Hugging Face GPT-2 checkpoint folder. Returns the weights as the file holds them."""
    os.makedirs(path, exist_ok=True)
    hf_cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
              "n_layer": cfg["n_layer"], "n_embd": cfg["n_embd"], "n_head": cfg["n_head"],
              "n_positions": cfg["n_positions"], "n_ctx": cfg["n_positions"],
              "vocab_size": cfg["vocab_size"], "n_inner": None,
              "layer_norm_epsilon": cfg["layer_norm_epsilon"], "activation_function": "gelu_new"}
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf_cfg, f)
    # lm_head sits beside the transformer, never under its prefix
    tensors = {(k if k.startswith("lm_head.") else prefix + k): v for k, v in sd.items()}
    # The buffers a real checkpoint carries, which an importer must ignore.
    T = cfg["n_positions"]
    for i in range(cfg["n_layer"]):
        tensors[f"{prefix}h.{i}.attn.bias"] = torch.ones(1, 1, T, T).tril()
        tensors[f"{prefix}h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    save_safetensors(os.path.join(path, "model.safetensors"), tensors, dtype)
    for fn in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(REPO, "data", "gpt2", fn), os.path.join(path, fn))
    np_dtype = {"F32": np.float32, "F16": np.float16}[dtype]
    return {k: v.numpy().astype(np_dtype).astype(np.float64) for k, v in sd.items()}


def from_qkv_model(path, cfg=None):
    """Reads a qkv model file with h5py and returns (cfg, Hugging Face style state dict). With
    cfg, any file of the model's dataset names (a gradients file from train --dump-grads)."""
    import h5py
    with h5py.File(path, "r") as f:
        if cfg is None:
            c = f["config"].attrs
            cfg = {"n_layer": int(c["n_layers"]), "n_embd": int(c["d_model"]), "n_head": int(c["n_heads"]),
                   "n_positions": int(c["n_ctx"]), "vocab_size": int(c["vocab_size"]),
                   "n_inner": int(c["d_mlp"]), "layer_norm_epsilon": float(c["ln_eps"])}
        H, D = cfg["n_head"], cfg["n_embd"]
        sd = {"wte.weight": f["embed/W_E"][()], "wpe.weight": f["pos_embed/W_pos"][()],
              "ln_f.weight": f["ln_final/w"][()], "ln_f.bias": f["ln_final/b"][()]}
        for i in range(cfg["n_layer"]):
            g, p = f[f"blocks/{i}"], f"h.{i}."
            # per-head [head, d_model, d_head] -> Conv1D [d_model, head * d_head]
            qkv = [np.concatenate(list(g[f"attn/W_{n}"][()]), axis=1) for n in "QKV"]
            sd[p + "attn.c_attn.weight"] = np.concatenate(qkv, axis=1)
            sd[p + "attn.c_attn.bias"] = np.concatenate([g[f"attn/b_{n}"][()].reshape(-1) for n in "QKV"])
            sd[p + "attn.c_proj.weight"] = g["attn/W_O"][()].reshape(-1, D)
            sd[p + "attn.c_proj.bias"] = g["attn/b_O"][()]
            for a, b in (("ln_1", "ln1"), ("ln_2", "ln2")):
                sd[p + a + ".weight"] = g[b + "/w"][()]
                sd[p + a + ".bias"] = g[b + "/b"][()]
            sd[p + "mlp.c_fc.weight"] = g["mlp/W_in"][()]
            sd[p + "mlp.c_fc.bias"] = g["mlp/b_in"][()]
            sd[p + "mlp.c_proj.weight"] = g["mlp/W_out"][()]
            sd[p + "mlp.c_proj.bias"] = g["mlp/b_out"][()]
        assert H * (D // H) == D
    return cfg, sd
