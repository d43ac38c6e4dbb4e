"""A float64 PyTorch implementation of GPT-NeoX (Pythia), written from Hugging Face's
GPTNeoXForCausalLM semantics, independent of qkv: LayerNorm with biases, the fused
query_key_value weight laid out per head as (q, k, v), rotary embeddings on the first
rotary_pct of each head (rotate-half layout), exact GELU, attention and MLP side by side
(use_parallel_residual) or in turn, an untied embed_out."""
import math

import numpy as np
import torch

from llama_ref import rotate_half

F64 = torch.float64


class NeoX:
    def __init__(self, cfg, sd):
        self.cfg = cfg
        self.sd = {k: torch.as_tensor(np.asarray(v), dtype=F64) for k, v in sd.items()}
        self.H = cfg["num_attention_heads"]
        self.dh = cfg["hidden_size"] // self.H
        self.rot = int(self.dh * cfg.get("rotary_pct", 0.25))
        self.eps = cfg.get("layer_norm_eps", 1e-5)
        self.parallel = cfg.get("use_parallel_residual", True)

    def w(self, name):
        return self.sd["gpt_neox." + name]

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.w(name + ".weight"), self.w(name + ".bias"), self.eps)

    def embed(self, tokens):
        return self.w("embed_in.weight")[torch.as_tensor(np.asarray(tokens), dtype=torch.long)]

    def rope(self, x, positions):
        base = self.cfg.get("rotary_emb_base", 10000)
        inv = 1.0 / (base ** (torch.arange(0, self.rot, 2, dtype=F64) / self.rot))
        angles = positions[:, None].to(F64) * inv[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        cos, sin = emb.cos()[None, :, None, :], emb.sin()[None, :, None, :]
        turned = x[..., :self.rot] * cos + rotate_half(x[..., :self.rot]) * sin
        return torch.cat((turned, x[..., self.rot:]), dim=-1)

    def attention(self, i, x, cache=None, hook=lambda name, t: t):  # hook: as gpt2_ref's
        B, T, D = x.shape
        p = f"layers.{i}.attention."
        h = self.ln(x, f"layers.{i}.input_layernorm")
        qkv = (h @ self.w(p + "query_key_value.weight").T + self.w(p + "query_key_value.bias")).view(B, T, self.H, 3 * self.dh)
        q, k, v = qkv.split(self.dh, dim=-1)
        positions = torch.arange(T)
        q, k, v = hook("q", self.rope(q, positions)), hook("k", self.rope(k, positions)), hook("v", v)
        scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.dh)
        scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
        pattern = hook("pattern", torch.softmax(scores, dim=-1))
        z = hook("z", torch.einsum("bhqk,bkhd->bqhd", pattern, v))
        Wo = self.w(p + "dense.weight").T.reshape(self.H, self.dh, D)
        head_out = torch.einsum("bqhd,hdm->bqhm", z, Wo)
        out = hook("attn_out", hook("head_out", head_out).sum(2) + self.w(p + "dense.bias"))
        if cache is not None:
            cache.update(q=q, k=k, v=v, scores=scores, pattern=pattern, z=z, head_out=head_out, out=out)
        return x + out

    def mlp(self, i, x, cache=None, x_pre=None, hook=lambda name, t: t):
        """x: the stream after attention; x_pre: before it (read by a parallel-residual MLP)."""
        p = f"layers.{i}."
        h = self.ln(x_pre if self.parallel else x, p + "post_attention_layernorm")
        pre = hook("mlp_pre", h @ self.w(p + "mlp.dense_h_to_4h.weight").T + self.w(p + "mlp.dense_h_to_4h.bias"))
        post = hook("mlp_post", torch.nn.functional.gelu(pre))  # the exact (erf) form
        if cache is not None:
            cache.update(pre=pre, post=post)
        return x + hook("mlp_out", post @ self.w(p + "mlp.dense_4h_to_h.weight").T + self.w(p + "mlp.dense_4h_to_h.bias"))

    def logits(self, x):
        return self.ln(x, "final_layer_norm") @ self.sd["embed_out.weight"].T

    def forward(self, tokens):
        x = self.embed(tokens)
        for i in range(self.cfg["num_hidden_layers"]):
            x = self.mlp(i, self.attention(i, x), x_pre=x)
        return self.logits(x)


def random_state(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    D, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]

    def r(*shape, std=0.1):
        return torch.randn(*shape, generator=g, dtype=F64) * std

    sd = {"gpt_neox.embed_in.weight": r(V, D, std=0.5), "gpt_neox.final_layer_norm.weight": 1 + r(D),
          "gpt_neox.final_layer_norm.bias": r(D), "embed_out.weight": r(V, D)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"gpt_neox.layers.{i}."
        sd.update({p + "input_layernorm.weight": 1 + r(D), p + "input_layernorm.bias": r(D),
                   p + "post_attention_layernorm.weight": 1 + r(D), p + "post_attention_layernorm.bias": r(D),
                   p + "attention.query_key_value.weight": r(3 * D, D, std=0.2),
                   p + "attention.query_key_value.bias": r(3 * D),
                   p + "attention.dense.weight": r(D, D, std=0.2), p + "attention.dense.bias": r(D),
                   p + "mlp.dense_h_to_4h.weight": r(F, D, std=0.2), p + "mlp.dense_h_to_4h.bias": r(F),
                   p + "mlp.dense_4h_to_h.weight": r(D, F, std=0.2), p + "mlp.dense_4h_to_h.bias": r(D),
                   # buffers a real checkpoint carries, which an importer must ignore
                   p + "attention.rotary_emb.inv_freq": r(4)})
    return sd


def from_qkv_model(path):
    """A qkv gpt-neox model file read with h5py as (Hugging Face config, state dict)."""
    import h5py
    with h5py.File(path, "r") as f:
        c = f["config"].attrs
        H, dh, D = int(c["n_heads"]), int(c["d_head"]), int(c["d_model"])
        cfg = {"hidden_size": D, "num_attention_heads": H, "num_hidden_layers": int(c["n_layers"]),
               "intermediate_size": int(c["d_mlp"]), "vocab_size": int(c["vocab_size"]),
               "layer_norm_eps": float(c["ln_eps"]), "rotary_pct": int(c["rotary_dim"]) / dh,
               "rotary_emb_base": float(c["rope_theta"]),
               "use_parallel_residual": bool(c["parallel_residual"])}

        def g(n):
            return torch.as_tensor(f[n][()], dtype=F64)

        sd = {"gpt_neox.embed_in.weight": g("embed/W_E"), "gpt_neox.final_layer_norm.weight": g("ln_final/w"),
              "gpt_neox.final_layer_norm.bias": g("ln_final/b"), "embed_out.weight": g("unembed/W_U").T}
        for i in range(cfg["num_hidden_layers"]):
            b, p = f"blocks/{i}/", f"gpt_neox.layers.{i}."
            W = torch.stack([g(b + "attn/W_" + x).permute(0, 2, 1) for x in "QKV"], dim=1)  # [head, 3, d_head, d_model]
            bias = torch.stack([g(b + "attn/b_" + x) for x in "QKV"], dim=1)  # [head, 3, d_head]
            sd.update({p + "input_layernorm.weight": g(b + "ln1/w"), p + "input_layernorm.bias": g(b + "ln1/b"),
                       p + "post_attention_layernorm.weight": g(b + "ln2/w"),
                       p + "post_attention_layernorm.bias": g(b + "ln2/b"),
                       p + "attention.query_key_value.weight": W.reshape(3 * D, D),
                       p + "attention.query_key_value.bias": bias.reshape(3 * D),
                       p + "attention.dense.weight": g(b + "attn/W_O").reshape(D, D).T,
                       p + "attention.dense.bias": g(b + "attn/b_O"),
                       p + "mlp.dense_h_to_4h.weight": g(b + "mlp/W_in").T, p + "mlp.dense_h_to_4h.bias": g(b + "mlp/b_in"),
                       p + "mlp.dense_4h_to_h.weight": g(b + "mlp/W_out").T, p + "mlp.dense_4h_to_h.bias": g(b + "mlp/b_out")})
    return cfg, sd
