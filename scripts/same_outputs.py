#!/usr/bin/python3
"""Checks that a change leaves qkv's outputs unchanged, byte for byte: the same commands run with
two builds' tools, and every dataset (and attribute but the history) of their outputs compared.

    git worktree add /tmp/base REV && cmake -S /tmp/base -B /tmp/base/build -DCMAKE_BUILD_TYPE=Release \
      && cmake --build /tmp/base/build -j2
    scripts/same_outputs.py /tmp/base/build/tools build/tools

What it runs with each: `model init` of the gpt2 preset and of tiny (fixed seeds); for two
prompts, tokenize | embed --save parts | attend -l 0 --save every site | mlp -l 0 --save pre,post
| block -L 1: | generate --from - (the logits); embed | block -L all; 20 training steps of the
tiny model (all weights, the optimizer state and the log); seeded and greedy generation
(--json: ids and log-probabilities) and generation's file (-o). Attributes that time the run are left out. Exit 0 when all are identical, 1 with the differences.

Two changes of the training output's form are compared through them: AdamW's moments, one flat
dataset in the fused order before the schema and a group per weight since, are compared weight
by weight; and the model_id of train's output, hashed in the write order, which is now the
schema's (that of model init), is left out (its weights are compared).
Both builds must run on the same machine with the same OPENBLAS_CORETYPE."""
import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np

PROMPTS = ["The quick brown fox jumps over the lazy dog, and then it",
           "O Romeo, Romeo! wherefore art thou Romeo? Deny thy father and refuse thy name."]
CORPUS = ("Now is the winter of our discontent made glorious summer by this sun of York; "
          "and all the clouds that lour'd upon our house in the deep bosom of the ocean buried. ") * 30


def sh(cmd, tools):
    env = dict(os.environ, PATH=tools + os.pathsep + os.environ["PATH"])
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"same_outputs: '{cmd}' with {tools} failed: {p.stderr.decode(errors='replace')}")
    return p.stdout


# Attributes that measure the run, not its result: the history line and training's wall clock.
RUN_ATTRS = {"history", "seconds", "tokens_per_s"}


def contents(path):
    """Every dataset's bytes and every attribute but those of RUN_ATTRS, by name."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for k, v in obj.attrs.items():
                if k not in RUN_ATTRS:
                    a = np.asarray(v)  # strings (dimension labels) by value, not their pointers
                    out[f"{name}@{k}"] = (v.encode() if isinstance(v, str) else
                                          repr(a.tolist()).encode() if a.dtype.kind == "O" else a.tobytes())
            if isinstance(obj, h5py.Dataset):
                v = obj[()]
                out[name] = v.tobytes() if v.dtype.kind != "O" else repr(v.tolist()).encode()
        visit("/", f)
        f.visititems(visit)
    return out


BLOCK = ["ln1/w", "ln1/b", "attn/W_Q", "attn/b_Q", "attn/W_K", "attn/b_K", "attn/W_V", "attn/b_V",
         "attn/W_O", "attn/b_O", "ln2/w", "ln2/b", "mlp/W_in", "mlp/b_in", "mlp/W_out", "mlp/b_out"]


def moments(path):
    """AdamW's moments of a checkpoint, by weight name, whichever form the file keeps them in."""
    out = {}
    with h5py.File(path, "r") as f:
        n_layers = int(f["config"].attrs["n_layers"])
        names = ["embed/W_E", "pos_embed/W_pos"] + [f"blocks/{l}/{b}" for l in range(n_layers)
                                                    for b in BLOCK] + ["ln_final/w", "ln_final/b"]
        for which in ("adam_m", "adam_v"):
            node = f["train"][which]
            if isinstance(node, h5py.Group):
                out.update({f"{which}/{n}": node[n][()].tobytes() for n in names})
                continue
            flat, at = node[()], 0
            for n in names:
                if n.endswith(("b_Q", "W_K", "b_K", "W_V", "b_V")):
                    continue
                shape = f[n].shape
                if n.endswith("W_Q"):  # fused [d_model, (q|k|v, head, d_head)], then the bias
                    H, D, dh = shape
                    fused = flat[at:at + 3 * H * D * dh].reshape(D, 3, H, dh)
                    bias = flat[at + 3 * H * D * dh:at + 3 * H * (D + 1) * dh].reshape(3, H, dh)
                    for x, q in enumerate("QKV"):
                        g = n[:-3]
                        out[f"{which}/{g}W_{q}"] = np.ascontiguousarray(fused[:, x].transpose(1, 0, 2)).tobytes()
                        out[f"{which}/{g}b_{q}"] = np.ascontiguousarray(bias[x]).tobytes()
                    at += 3 * H * (D + 1) * dh
                    continue
                size = int(np.prod(shape))
                out[f"{which}/{n}"] = flat[at:at + size].tobytes()
                at += size
            assert at == flat.size, (path, at, flat.size)
    return out


def outputs(tools, d):
    """Runs every command with one build's tools in folder d; returns {label: bytes}."""
    res = {}
    sh(f"model init --preset gpt2 --seed 1 -o {d}/gpt2.h5 -q", tools)
    sh(f"model init --preset tiny --seed 2 -o {d}/tiny.h5 -q", tools)
    for i, prompt in enumerate(PROMPTS):
        m = f"{d}/gpt2.h5"
        sh(f"tokenize -m {m} '{prompt}' | embed -m {m} --save parts "
           f"| attend -m {m} -l 0 --save scores,pattern,q,k,v,z,head_out,out "
           f"| mlp -m {m} -l 0 --save pre,post | block -m {m} -L 1: | generate -m {m} --from - -o {d}/p{i}.h5", tools)
        sh(f"tokenize -m {m} '{prompt}' | embed -m {m} | block -m {m} -L all -o {d}/b{i}.h5", tools)
        for label, path in ((f"pipeline {i}", f"{d}/p{i}.h5"), (f"block {i}", f"{d}/b{i}.h5")):
            res.update({f"{label}: {k}": v for k, v in contents(path).items()})
    with open(f"{d}/corpus.txt", "w") as f:
        f.write(CORPUS)
    sh(f"train --model {d}/tiny.h5 -f {d}/corpus.txt --steps 20 --batch 4 --context 32 --lr 3e-3 "
       f"--warmup 4 --eval-every 10 --eval-iters 2 -o {d}/trained.h5 --quiet", tools)
    res.update({f"train: {k}": v for k, v in contents(f"{d}/trained.h5").items()
                if not k.startswith("train/adam_") and k != "/@model_id"})
    res.update({f"train moments: {k}": v for k, v in moments(f"{d}/trained.h5").items()})
    for what, args in (("sampled", "-n 20 --seed 5"), ("greedy", "-n 10 --temperature 0")):
        g = json.loads(sh(f"generate -m {d}/gpt2.h5 '{PROMPTS[0]}' {args} --ignore-eos --json", tools))
        res[f"generate {what}"] = json.dumps([g["generated_ids"], g["logprobs"]]).encode()
    sh(f"generate -m {d}/gpt2.h5 '{PROMPTS[1]}' -n 5 --seed 3 --ignore-eos -o {d}/g.h5", tools)
    res.update({f"generate -o: {k}": v for k, v in contents(f"{d}/g.h5").items()})
    for k, v in contents(f"{d}/gpt2.h5").items():
        res[f"model: {k}"] = v
    return res


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="qkv-same-") as a, tempfile.TemporaryDirectory(prefix="qkv-same-") as b:
        base, new = outputs(os.path.abspath(sys.argv[1]), a), outputs(os.path.abspath(sys.argv[2]), b)
    differ = sorted(k for k in base.keys() | new.keys() if base.get(k) != new.get(k))
    for k in differ:
        print(f"differs: {k}" if k in base and k in new else f"only in {'base' if k in base else 'new'}: {k}")
    print(f"{len(base)} outputs compared, {len(differ)} differ")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
