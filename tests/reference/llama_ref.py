"""A float64 PyTorch implementation of the Llama family (Llama, Mistral, Qwen2, SmolLM), written
from Hugging Face's LlamaForCausalLM / Qwen2ForCausalLM semantics, independent of qkv: RMSNorm,
rotary embeddings in the rotate-half layout (with Llama 3.1's rope scaling), grouped-query
attention (each key/value head repeated for its group of query heads), SwiGLU. It works on a
Hugging Face state dict; write_hf_dir writes one as a checkpoint folder for `model import`."""
import json
import math
import os

import numpy as np
import torch

from gpt2_ref import save_safetensors

F64 = torch.float64


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def inv_freq(cfg):
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg.get("rope_theta", 10000.0)
    f = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=F64) / dim))
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wavelen = 2 * math.pi / f
        scaled = torch.where(wavelen > old / low, f / factor, f)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelen >= old / high) & (wavelen <= old / low)
        f = torch.where(medium, smoothed, scaled)
    return f


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope(x, positions, cfg):
    """x [batch, pos, heads, d_head] turned by each position's angles."""
    angles = positions[:, None].to(F64) * inv_freq(cfg)[None, :]  # [pos, d_head/2]
    emb = torch.cat((angles, angles), dim=-1)
    cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]
    return x * cos + rotate_half(x) * sin


class Llama:
    def __init__(self, cfg, sd):
        self.cfg = cfg
        self.sd = {k: torch.as_tensor(np.asarray(v), dtype=F64) for k, v in sd.items()}
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg.get("num_key_value_heads") or self.H
        self.dh = cfg.get("head_dim") or cfg["hidden_size"] // self.H
        self.eps = cfg["rms_norm_eps"]

    def w(self, name):
        return self.sd["model." + name]

    def embed(self, tokens):
        return self.w("embed_tokens.weight")[torch.as_tensor(np.asarray(tokens), dtype=torch.long)]

    def linear(self, x, name, bias=False):
        y = x @ self.w(name + ".weight").T
        key = "model." + name + ".bias"
        return y + self.sd[key] if key in self.sd else y

    def attention(self, i, x, cache=None, pos0=0, hook=lambda name, t: t):  # hook: as gpt2_ref's
        B, T, _ = x.shape
        p = f"layers.{i}."
        h = rms_norm(x, self.w(p + "input_layernorm.weight"), self.eps)
        q = self.linear(h, p + "self_attn.q_proj").view(B, T, self.H, self.dh)
        k = self.linear(h, p + "self_attn.k_proj").view(B, T, self.Hkv, self.dh)
        v = self.linear(h, p + "self_attn.v_proj").view(B, T, self.Hkv, self.dh)
        positions = torch.arange(pos0, pos0 + T)
        q, k = hook("q", rope(q, positions, self.cfg)), hook("k", rope(k, positions, self.cfg))
        v = hook("v", v)
        G = self.H // self.Hkv
        kk, vv = k.repeat_interleave(G, dim=2), v.repeat_interleave(G, dim=2)  # HF's repeat_kv
        scores = torch.einsum("bqhd,bkhd->bhqk", q, kk) / math.sqrt(self.dh)
        mask = torch.ones(T, T, dtype=torch.bool).tril()
        scores = scores.masked_fill(~mask, float("-inf"))
        pattern = hook("pattern", torch.softmax(scores, dim=-1))
        z = hook("z", torch.einsum("bhqk,bkhd->bqhd", pattern, vv))
        Wo = self.w(p + "self_attn.o_proj.weight").T.reshape(self.H, self.dh, -1)  # [head, d_head, d_model]
        head_out = hook("head_out", torch.einsum("bqhd,hdm->bqhm", z, Wo))
        out = hook("attn_out", head_out.sum(2))
        if cache is not None:
            cache.update(q=q, k=k, v=v, scores=scores, pattern=pattern, z=z, head_out=head_out, out=out)
        return x + out

    def mlp(self, i, x, cache=None, x_pre=None, hook=lambda name, t: t):  # (x_pre: parallel-residual families)
        p = f"layers.{i}."
        h = rms_norm(x, self.w(p + "post_attention_layernorm.weight"), self.eps)
        pre = hook("mlp_pre", self.linear(h, p + "mlp.gate_proj"))
        pre_linear = self.linear(h, p + "mlp.up_proj")
        post = hook("mlp_post", torch.nn.functional.silu(pre) * pre_linear)
        if cache is not None:
            cache.update(pre=pre, pre_linear=pre_linear, post=post)
        return x + hook("mlp_out", self.linear(post, p + "mlp.down_proj"))

    def logits(self, x):
        h = rms_norm(x, self.w("norm.weight"), self.eps)
        W = self.sd.get("lm_head.weight", self.w("embed_tokens.weight"))
        return h @ W.T

    def forward(self, tokens):
        x = self.embed(tokens)
        for i in range(self.cfg["num_hidden_layers"]):
            x = self.mlp(i, self.attention(i, x))
        return self.logits(x)


def random_state(cfg, seed, qkv_bias=False, tied=False):
    g = torch.Generator().manual_seed(seed)
    D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    H = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads") or H
    dh = cfg.get("head_dim") or D // H

    def r(*shape, std=0.1):
        return torch.randn(*shape, generator=g, dtype=F64) * std

    sd = {"model.embed_tokens.weight": r(V, D, std=0.5), "model.norm.weight": 1 + r(D)}
    if not tied:
        sd["lm_head.weight"] = r(V, D)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        sd.update({p + "input_layernorm.weight": 1 + r(D), p + "post_attention_layernorm.weight": 1 + r(D),
                   p + "self_attn.q_proj.weight": r(H * dh, D, std=0.2),
                   p + "self_attn.k_proj.weight": r(Hkv * dh, D, std=0.2),
                   p + "self_attn.v_proj.weight": r(Hkv * dh, D, std=0.2),
                   p + "self_attn.o_proj.weight": r(D, H * dh, std=0.2),
                   p + "mlp.gate_proj.weight": r(F, D, std=0.2), p + "mlp.up_proj.weight": r(F, D, std=0.2),
                   p + "mlp.down_proj.weight": r(D, F, std=0.2)})
        if qkv_bias:
            sd.update({p + "self_attn.q_proj.bias": r(H * dh), p + "self_attn.k_proj.bias": r(Hkv * dh),
                       p + "self_attn.v_proj.bias": r(Hkv * dh)})
    return sd


def write_hf_dir(path, cfg, sd, dtype="F32", shards=1, tokenizer_json=None):
    """A Hugging Face checkpoint folder: config.json, the weights in one file or `shards` files
    with model.safetensors.index.json, tokenizer.json. Returns the weights as stored."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f)
    names = sorted(sd)
    stored = {}
    if shards == 1:
        stored = save_safetensors(os.path.join(path, "model.safetensors"), sd, dtype)
    else:
        weight_map = {}
        for s in range(shards):
            fn = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: sd[n] for n in names[s::shards]}
            stored.update(save_safetensors(os.path.join(path, fn), part, dtype))
            weight_map.update({n: fn for n in part})
        with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f)
    if tokenizer_json is not None:
        tokenizer_json(os.path.join(path, "tokenizer.json"))
    return stored


def from_qkv_model(path):
    """A qkv llama model file read with h5py as (Hugging Face config, state dict)."""
    import h5py
    with h5py.File(path, "r") as f:
        c = f["config"].attrs
        H, Hkv, dh, D = int(c["n_heads"]), int(c["n_kv_heads"]), int(c["d_head"]), int(c["d_model"])
        cfg = {"hidden_size": D, "num_attention_heads": H, "num_key_value_heads": Hkv, "head_dim": dh,
               "num_hidden_layers": int(c["n_layers"]), "intermediate_size": int(c["d_mlp"]),
               "vocab_size": int(c["vocab_size"]), "rms_norm_eps": float(c["ln_eps"]),
               "rope_theta": float(c["rope_theta"])}

        def g(n):
            return torch.as_tensor(f[n][()], dtype=F64)

        def linear(n):  # [heads, d_model, d_head] -> [heads * d_head, d_model]
            W = g(n)
            return W.permute(0, 2, 1).reshape(-1, W.shape[1])

        sd = {"model.embed_tokens.weight": g("embed/W_E"), "model.norm.weight": g("ln_final/w"),
              "lm_head.weight": g("unembed/W_U").T}
        for i in range(cfg["num_hidden_layers"]):
            b, p = f"blocks/{i}/", f"model.layers.{i}."
            sd.update({p + "input_layernorm.weight": g(b + "ln1/w"),
                       p + "post_attention_layernorm.weight": g(b + "ln2/w"),
                       p + "self_attn.q_proj.weight": linear(b + "attn/W_Q"),
                       p + "self_attn.k_proj.weight": linear(b + "attn/W_K"),
                       p + "self_attn.v_proj.weight": linear(b + "attn/W_V"),
                       p + "self_attn.o_proj.weight": g(b + "attn/W_O").reshape(H * dh, D).T,
                       p + "mlp.gate_proj.weight": g(b + "mlp/W_gate").T,
                       p + "mlp.up_proj.weight": g(b + "mlp/W_in").T,
                       p + "mlp.down_proj.weight": g(b + "mlp/W_out").T})
    return cfg, sd
