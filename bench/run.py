#!/usr/bin/python3
"""qkv's CPU benchmark: one command, a table on stdout and JSON in bench/results/bench.json.

Workloads (random weights of the real shapes from `model init`, no download; GPT-2 and a
Llama-family preset, SmolLM2-135M: grouped-query attention, rotary positions, SwiGLU):
  1. prefill: T tokens to the last position's logits, in one process (compute time from
     `generate --stats`) and as `embed | block --layers all | generate --from -` (wall time,
     loads included); GFLOP/s = FLOPs / time with
     FLOPs = 2 T (block matrix weights) + 4 L T^2 d_attn (scores and weighted values, all T x T
     as computed) + 2 d_model vocab (last-position unembedding);
  1b. batched: 8 sequences of 128 tokens through every block in one forward (the shape of a
     sweep), compute time from `block --stats`; FLOPs = 2 B T (block matrix weights) + 4 L B T^2
     d_attn;
  2. decode: tokens/s for 128 new tokens after a 16-token prompt (KV cache), against the bound
     bandwidth / (bytes of weights read per token), with float32 weights and with the same model
     exported F16 (weights kept 16-bit in memory: half the bytes, so twice the bound); peak RSS
     against weights (the tied W_U counted once, as qkv holds it) + the KV cache of the run's
     positions (prompt + new tokens: the room generate makes); and
     the start-up of `generate -n 1` on a 2-token prompt (whole process), beside PyTorch's
     in-process load of the same weights; and the one-shot prefill of 256 tokens as a user runs
     it (`generate` on a 256-token file, whole process: start, load, forward) against
     PyTorch's in-process forward of the same 256 tokens (a ratio of times);
  3. pipeline overhead: tokenize | embed | (attend | mlp) x L | generate --from - over pipes,
     against tokenize | embed | block --layers all | generate --from -, T = 256;
  4. load: time and peak RSS of `attend --layer 5` against `block --layers all`;
  5. tokenizer MB/s (bench/tokenizer_bench on the Shakespeare corpus).
Each is the median of --runs runs with min..max; PyTorch (bench/torch_forward.py, same threads,
float32, no grad, its own KV cache) runs the same prefill, batch and decode in the same run, with
OMP_WAIT_POLICY unset and =passive, and the better figure is the one compared.
Times are reported, never asserted. --quick: the tiny model, small sizes, one run (for CI).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def sh(cmd, env=None):
    """Runs a shell command; returns (wall seconds, peak RSS MiB of its children, stdout, stderr)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(["bash", "-o", "pipefail", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env)
    out, err = p.communicate()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"bench: '{cmd}' failed: {err.decode(errors='replace')}")
    return wall, out.decode(errors="replace"), err.decode(errors="replace")


def peak_rss(cmd):
    """Wall time and peak RSS (MiB) of one process. Through GNU time where it is installed: a
    process's ru_maxrss starts from the size of the process that ran it (Linux carries it across
    exec), and time is small where this Python process is not."""
    gnu_time = os.path.exists("/usr/bin/time")
    t0 = time.perf_counter()
    p = subprocess.Popen((["/usr/bin/time", "-f", "%M"] if gnu_time else []) + cmd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode()
    if status != 0:
        sys.exit(f"bench: {cmd} failed: {err}")
    return wall, (int(err.split()[-1]) if gnu_time else ru.ru_maxrss) / 1024


def med(xs):
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": len(xs)}


def stats_line(err, what):
    m = re.search(what + r": (\d+) tokens in ([\d.]+) s", err)
    return int(m.group(1)), float(m.group(2))


def write_tokens(path, model, rows):
    import h5py
    import numpy as np
    with h5py.File(model, "r") as m:
        mid = m.attrs["model_id"]
    with h5py.File(path, "w") as f:
        f.attrs.update(format="qkv-activations", version=np.int64(1), model_id=mid, stage="tokens",
                       layer=np.int64(-1), history="bench/run.py")
        f["tokens"] = np.asarray(rows, dtype=np.int32)  # [batch, pos]


def config(model):
    import h5py
    import numpy as np
    with h5py.File(model, "r") as f:
        c = f["config"].attrs
        out = {k: int(c[k]) for k in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "n_ctx", "vocab_size")}
        out["n_kv_heads"] = int(c.get("n_kv_heads", out["n_heads"]))
        out["gated_mlp"] = int(c.get("gated_mlp", 0))
        out["pos_embed"] = "pos_embed/W_pos" in f
        # qkv holds W_U once where it is W_E transposed; compared 64 rows at a time, so that this
        # process stays small (a child's peak RSS starts from its parent's size at the fork)
        D = out["d_model"]
        out["tied"] = all(np.array_equal(f["unembed/W_U"][i:i + 64], f["embed/W_E"][:, i:i + 64].T)
                          for i in range(0, D, 64))
        return out


def torch_run(model, threads, args, passive):
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if passive:
        env["OMP_WAIT_POLICY"] = "passive"
    cmd = f"/usr/bin/python3 {HERE}/torch_forward.py {model} --device cpu --threads {threads} {args}"
    return json.loads(sh(cmd, env)[1])


def torch_pair(model, threads, args):
    """One PyTorch run with OMP_WAIT_POLICY unset and one with =passive, each one timed pass
    (after its warm-up): called once per run, between qkv's runs, so that both sides meet the
    same moments of a noisy machine."""
    return [torch_run(model, threads, args + " --runs 1", p) for p in (False, True)]


def torch_best(pairs, figure):
    """PyTorch's figure (a rate) per setting, the median over the runs; and the better one."""
    per = {name: statistics.median(figure(p[i]) for p in pairs) for i, name in enumerate(("default", "passive"))}
    return per, max(per.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", default="gpt2,gpt2-medium,smollm2-135m")
    ap.add_argument("--prefill", default="64,256,1024")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench.json"))
    a = ap.parse_args()
    if a.quick:
        a.models, a.prefill, a.runs = "tiny,llama-tiny", "16", 1
    n_new, n_prompt = (8, 16) if a.quick else (128, 16)
    n_seq, seq_pos = (2, 16) if a.quick else (8, 128)
    tools = os.path.join(a.build, "tools")
    env_path = f"export PATH={tools}:$PATH;"
    T = a.threads
    res = {"threads": T, "quick": a.quick, "models": {}}

    mach = json.loads(sh(f"{a.build}/bench/machine_bench {T}")[1])
    res["machine"] = mach
    bw = mach["read_gb_per_s"] * 1e9
    rows = []
    with tempfile.TemporaryDirectory(prefix="qkv-bench-") as d:
        for preset in a.models.split(","):
            model = f"{d}/{preset}.h5"
            sh(f"{tools}/model init --preset {preset} --seed 1 -o {model} -q")
            c = config(model)
            L, D, V, F = c["n_layers"], c["d_model"], c["vocab_size"], c["d_mlp"]
            A, Akv = c["n_heads"] * c["d_head"], c["n_kv_heads"] * c["d_head"]  # query and key widths
            block_weights = L * (D * (A + 2 * Akv) + A * D + (3 if c["gated_mlp"] else 2) * D * F)
            r = res["models"][preset] = {"config": c, "prefill": {}, "decode": {}}
            # 1. prefill
            for t in [int(x) for x in a.prefill.split(",")]:
                t = min(t, c["n_ctx"])
                ids = [(i * 7919 + 13) % V for i in range(t)]
                write_tokens(f"{d}/tok{t}.h5", model, [ids])
                flops = 2 * t * block_weights + 4 * L * t * t * A + 2 * D * V
                one, piped, whole, pairs = [], [], [], []
                for _ in range(a.runs):
                    w, _, err = sh(f"{tools}/generate -m {model} --tokens {d}/tok{t}.h5 -n 0 --temperature 0 "
                                   f"--ignore-eos --stats --threads {T}")
                    one.append(stats_line(err, "prompt")[1])
                    whole.append(w)
                    w, _, _ = sh(f"{env_path} embed -m {model} {d}/tok{t}.h5 --threads {T} | block -m {model} "
                                 f"--threads {T} | generate -m {model} --from - --top 1 --threads {T} > /dev/null")
                    piped.append(w)
                    pairs.append(torch_pair(model, T, f"--prefill {t} --decode 0"))
                per, best_torch = torch_best(pairs, lambda x: x["prefill"][str(t)]["tokens_per_s"])
                ours = t / statistics.median(one)
                r["prefill"][t] = {"one_process_s": med(one), "pipeline_wall_s": med(piped), "whole_process_s": med(whole),
                                   "tokens_per_s": ours, "gflops": flops / statistics.median(one),
                                   "flops": flops, "torch_tokens_per_s": per, "ratio_vs_torch": ours / best_torch}
                rows.append((preset, f"prefill T={t}", f"{ours:.0f} tok/s", f"{flops / statistics.median(one) / 1e9:.0f} GFLOP/s",
                             f"{best_torch:.0f} tok/s", f"{ours / best_torch:.2f}x",
                             f"{min(one):.3f}..{max(one):.3f} s; piped {statistics.median(piped):.2f} s wall"))
                if t == min(16 if a.quick else 256, c["n_ctx"]):  # the one-shot prefill as a user runs it
                    torch_s = t / best_torch
                    r["one_shot"] = {"tokens": t, "whole_process_s": med(whole), "torch_forward_s": torch_s,
                                     "time_ratio": statistics.median(whole) / torch_s}
                    rows.append((preset, f"one-shot prefill T={t}", f"{statistics.median(whole):.2f} s", "whole process",
                                 f"{torch_s:.2f} s", f"{statistics.median(whole) / torch_s:.2f}x t",
                                 "generate on a token file (start, load, forward) / PyTorch's in-process forward"))
            # 1b. batched: B sequences of T tokens through every block in one forward
            write_tokens(f"{d}/batch.h5", model, [[(i * 7919 + 31 * j + 13) % V for i in range(seq_pos)] for j in range(n_seq)])
            sh(f"{tools}/embed -m {model} {d}/batch.h5 -o {d}/batch-e.h5")
            bflops = 2 * n_seq * seq_pos * block_weights + 4 * L * n_seq * seq_pos ** 2 * A
            fw, pairs = [], []
            for _ in range(a.runs):
                _, _, err = sh(f"{tools}/block -m {model} {d}/batch-e.h5 -o {d}/batch-b.h5 --stats --threads {T}")
                fw.append(float(re.search(r"forward: \d+ x \d+ tokens, layers \S+ in ([\d.]+) s", err).group(1)))
                pairs.append(torch_pair(model, T, f"--prefill '' --decode 0 --batch {n_seq} --batch-pos {seq_pos}"))
            per, best_torch = torch_best(pairs, lambda x: x["batched"]["tokens_per_s"])
            ours = n_seq * seq_pos / statistics.median(fw)
            r["batched"] = {"batch": n_seq, "pos": seq_pos, "forward_s": med(fw), "tokens_per_s": ours,
                            "gflops": bflops / statistics.median(fw), "flops": bflops,
                            "torch_tokens_per_s": per, "ratio_vs_torch": ours / best_torch}
            rows.append((preset, f"batched {n_seq} x {seq_pos}", f"{ours:.0f} tok/s", f"{bflops / statistics.median(fw) / 1e9:.0f} GFLOP/s",
                         f"{best_torch:.0f} tok/s", f"{ours / best_torch:.2f}x",
                         f"{min(fw):.3f}..{max(fw):.3f} s; block --stats, loads apart"))
            # 2. decode, float32 weights and the same model exported F16 (kept 16-bit in memory)
            write_tokens(f"{d}/p{n_prompt}.h5", model, [[(i * 31 + 7) % V for i in range(n_prompt)]])
            half = f"{d}/{preset}-f16.h5"
            sh(f"{tools}/model export {model} --dtype f16 -o {half} -q")
            write_tokens(f"{d}/p{n_prompt}-f16.h5", half, [[(i * 31 + 7) % V for i in range(n_prompt)]])

            def decode(m, tok):
                """One decoding run: tokens/s and peak memory (MiB)."""
                _, _, err = sh(f"{tools}/generate -m {m} --tokens {tok} -n {n_new} --temperature 0 "
                               f"--ignore-eos --stats --threads {T}")
                n, s = stats_line(err, "generated")
                return n / s, float(re.search(r"peak memory: ([\d.]+) MiB", err).group(1))

            dec, dec16, peak, peak16, pairs = [], [], 0.0, 0.0, []
            for _ in range(a.runs):
                rate, top = decode(model, f"{d}/p{n_prompt}.h5")
                dec.append(rate)
                peak = max(peak, top)
                rate, top = decode(half, f"{d}/p{n_prompt}-f16.h5")
                dec16.append(rate)
                peak16 = max(peak16, top)
                pairs.append(torch_pair(model, T, f"--prefill '' --decode {n_new} --prompt {n_prompt}"))
            per, best_torch = torch_best(pairs, lambda x: x["decode"]["tokens_per_s"])
            unembed = 0 if c["tied"] else D * V  # a second matrix only where W_U is not W_E^T
            pos_table = c["n_ctx"] * D if c["pos_embed"] else 0
            weight_bytes = 4 * (block_weights + D * V)  # read per token: the blocks and the unembedding
            bound = bw / weight_bytes
            kv_bytes = 2 * L * (n_prompt + n_new) * Akv * 4  # generate's cache holds the run's positions
            held = block_weights + D * V + unembed + pos_table  # the tied W_U is W_E, held once
            ours, ours16 = statistics.median(dec), statistics.median(dec16)
            need, need16 = (4 * held + kv_bytes) / 2**20, (2 * held + kv_bytes) / 2**20
            r["decode"] = {"tokens_per_s": med(dec), "bound_tokens_per_s": bound, "share_of_bound": ours / bound,
                           "weight_bytes_per_token": weight_bytes, "peak_mib": peak,
                           "weights_plus_kv_mib": need, "memory_ratio": peak / need,
                           "torch_tokens_per_s": per, "ratio_vs_torch": ours / best_torch}
            r["decode_f16"] = {"tokens_per_s": med(dec16), "bound_tokens_per_s": 2 * bound,
                               "share_of_bound": ours16 / (2 * bound), "ratio_vs_f32": ours16 / ours,
                               "peak_mib": peak16, "weights_plus_kv_mib": need16, "memory_ratio": peak16 / need16}
            rows.append((preset, f"decode {n_new} after {n_prompt}", f"{ours:.1f} tok/s", f"{100 * ours / bound:.0f}% of bound {bound:.0f}",
                         f"{best_torch:.1f} tok/s", f"{ours / best_torch:.2f}x",
                         f"{min(dec):.1f}..{max(dec):.1f}; peak {peak:.0f} MiB = {peak / need:.2f}x weights+KV {need:.0f}"))
            rows.append((preset, f"decode, F16 weights", f"{ours16:.1f} tok/s", f"{100 * ours16 / (2 * bound):.0f}% of bound {2 * bound:.0f}",
                         "", f"{ours16 / ours:.2f}x f32",
                         f"{min(dec16):.1f}..{max(dec16):.1f}; peak {peak16:.0f} MiB = {peak16 / need16:.2f}x weights+KV {need16:.0f}"))
            # 2b. start-up: one new token after a 2-token prompt, whole process, warm page cache
            with open(f"{d}/hi.txt", "w") as f:
                f.write("hi there")
            once = [sh(f"{tools}/generate -m {model} -n 1 -f {d}/hi.txt --temperature 0 --threads {T}")[0] for _ in range(a.runs)]
            once16 = [sh(f"{tools}/generate -m {half} -n 1 -f {d}/hi.txt --temperature 0 --threads {T}")[0] for _ in range(a.runs)]
            # PyTorch's load: from the decode runs above (each process loads the weights once)
            torch_load = statistics.median(min(x["load_s"] for x in p) for p in pairs)
            r["startup"] = {"generate_n1_s": med(once), "generate_n1_f16_s": med(once16), "torch_load_s": torch_load}
            rows.append((preset, "start-up: generate -n 1", f"{statistics.median(once):.2f} s", f"F16: {statistics.median(once16):.2f} s",
                         f"load {torch_load:.2f} s", f"{statistics.median(once) / torch_load:.2f}x t",
                         "whole process, 2-token prompt, page cache warm; PyTorch: its load alone"))
            # 3. pipeline overhead over pipes, T = 256 (or the prefill size in quick mode)
            tp = min(256 if not a.quick else 16, c["n_ctx"])
            text = " ".join(["word"] * tp)
            chain = " | ".join(f"attend -m {model} -l {l} --threads {T} | mlp -m {model} -l {l} --threads {T}" for l in range(L))
            pipe_s, one_s = [], []
            for _ in range(a.runs):
                pipe_s.append(sh(f"{env_path} tokenize -m {model} '{text}' | embed -m {model} | {chain} | "
                                 f"generate -m {model} --from - --top 1 > /dev/null")[0])
                one_s.append(sh(f"{env_path} tokenize -m {model} '{text}' | embed -m {model} | block -m {model} --threads {T} | "
                                f"generate -m {model} --from - --top 1 > /dev/null")[0])
            ratio = statistics.median(pipe_s) / statistics.median(one_s)
            r["pipeline"] = {"tokens": tp, "pipes_s": med(pipe_s), "block_s": med(one_s), "ratio": ratio}
            rows.append((preset, f"pipes vs block, T={tp}", f"{statistics.median(pipe_s):.2f} s", f"{statistics.median(one_s):.2f} s",
                         "", f"{ratio:.2f}x", f"(attend|mlp) x {L} over pipes / one block process"))
            # 4. load
            sh(f"{tools}/embed -m {model} {d}/p{n_prompt}.h5 -o {d}/e.h5")
            layer = min(5, L - 1)
            one_layer = [peak_rss([f"{tools}/attend", "-m", model, "-l", str(layer), "--force", f"{d}/e.h5", "-o", f"{d}/a.h5"]) for _ in range(a.runs)]
            whole = [peak_rss([f"{tools}/block", "-m", model, f"{d}/e.h5", "-o", f"{d}/b.h5"]) for _ in range(a.runs)]
            t1, t2 = statistics.median(x[0] for x in one_layer), statistics.median(x[0] for x in whole)
            r["load"] = {"attend_one_layer_s": t1, "attend_peak_mib": max(x[1] for x in one_layer),
                         "block_all_s": t2, "block_peak_mib": max(x[1] for x in whole), "ratio": t1 / t2}
            rows.append((preset, f"load: attend -l {layer} vs block all", f"{t1:.3f} s", f"{t2:.3f} s", "",
                         f"{t1 / t2:.2f}x", f"peak {max(x[1] for x in one_layer):.0f} vs {max(x[1] for x in whole):.0f} MiB"))
    # 5. tokenizer
    corpus = os.path.join(REPO, "..", "shared", "data", "tinyshakespeare.txt")
    if os.path.exists(corpus):
        tok = json.loads(sh(f"{a.build}/bench/tokenizer_bench {corpus} {max(a.runs, 3)}")[1])
        res["tokenizer"] = tok
        rows.append(("-", "tokenizer (Shakespeare)", f"{tok['mb_per_s_median']:.1f} MB/s", "", "", "",
                     f"{tok['mb_per_s_min']:.1f}..{tok['mb_per_s_max']:.1f}; bench/tokenizer.sh compares js-tiktoken"))
    else:
        print("bench: ../shared/data/tinyshakespeare.txt absent: tokenizer skipped", file=sys.stderr)

    sg = ", ".join(f"{x['M']}x{x['N']}x{x['K']}: {x['gflops']:.0f}" for x in mach["sgemm"])
    print(f"machine: {T} threads; sgemm GFLOP/s (MxNxK) {sg}; memory read {mach['read_gb_per_s']:.1f} GB/s")
    hdr = ("model", "workload", "qkv", "measure", "PyTorch (better)", "ratio", "notes")
    widths = [12, 26, 14, 22, 17, 7, 0]
    print("  ".join(h.ljust(w) for h, w in zip(hdr, widths)))
    for row in rows:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=2)
    print(f"JSON: {a.out}")


if __name__ == "__main__":
    main()
