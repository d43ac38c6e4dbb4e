"""Interventions at any site (--patch, --ablate, --add on attend, mlp and block) against the
float64 references with hooks at the same sites (gpt2_ref.py, llama_ref.py: GPT-2 and a Llama
with grouped-query attention), and GPT-NeoX for the self-patch identity:
- patching a run with its own activations, at every site, changes nothing (bit-identical);
- patching from another prompt at one position (and chosen heads, key/value heads or neurons)
  changes nothing before it and equals the reference's patched run after it (1e-4 relative);
- mean, resample and zero ablation, and a steering vector added to the stream, as the reference;
- attend and mlp give what block gives; `modified` names the source and a hash of its values;
- bad input: one line, exit 1 or 2, no output file."""
import json
import os
import unittest

import h5py
import numpy as np
import torch

import gpt2_ref
import llama_ref
import neox_ref
from qkvtest import init_families, read, run, shell, tmpdir, write_tokens

REL_TOL = 1e-4
ALL_SAVES = "resid_pre,resid_mid,q,k,v,pattern,z,head_out,out,pre,post,mlp_out"
SITES = ["resid_pre", "q", "k", "v", "pattern", "z", "head_out", "attn_out", "resid_mid", "mlp_pre",
         "mlp_post", "mlp_out"]
CLEAN = [464, 3797, 3332, 319, 262, 2603, 290, 3114, 379]
CORRUPT = [464, 3290, 10357, 625, 262, 1110, 13, 632, 373]
P = 4  # the position patched


def close(tc, got, ref, what):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    scale = np.abs(ref).max()
    err = np.abs(got - ref).max()
    tc.assertLessEqual(err, REL_TOL * scale, f"{what}: max abs diff {err:.3g} > {REL_TOL} * {scale:.3g}")


class Reference:
    """The float64 model run with hooks: edits {(layer, site): f(tensor) -> tensor}; GPT-2, a
    Llama or GPT-NeoX (parallel residual: the MLP reads the stream before attention)."""

    def __init__(self, model, family):
        if family == "gpt2":
            cfg, sd = gpt2_ref.from_qkv_model(model)
            self.ref, self.layers = gpt2_ref.GPT2(cfg, sd), cfg["n_layer"]
        elif family == "llama":
            cfg, sd = llama_ref.from_qkv_model(model)
            self.ref, self.layers = llama_ref.Llama(cfg, sd), cfg["num_hidden_layers"]
        else:
            cfg, sd = neox_ref.from_qkv_model(model)
            self.ref, self.layers = neox_ref.NeoX(cfg, sd), cfg["num_hidden_layers"]
        self.parallel = family == "neox" and self.ref.parallel

    def stream(self, tokens, edits=None, cache=None, grad=False):
        """The final stream [1, pos, d_model] (torch); with grad, every hooked tensor in cache
        keeps its gradient (retain_grad) for a backward pass from a function of the stream."""
        edits = edits or {}
        x = self.ref.embed([tokens]).clone().requires_grad_(grad)
        for i in range(self.layers):
            def hook(name, t, i=i):
                if cache is not None:
                    if grad:
                        t.retain_grad()
                    cache[(i, name)] = t
                f = edits.get((i, name))
                return f(t.clone()) if f else t
            x = hook("resid_pre", x)
            mid = hook("resid_mid", self.ref.attention(i, x, hook=hook))
            x = self.ref.mlp(i, mid, x_pre=x, hook=hook) if self.parallel else self.ref.mlp(i, mid, hook=hook)
        return x

    def run(self, tokens, edits=None, cache=None):
        return self.stream(tokens, edits, cache)[0].detach().numpy()


def at(site, t, units, positions=None):
    """A hooked tensor's cells: [batch, pos, unit, ...] (pattern: [batch, head, query, key]);
    the stream and the MLP's outputs have no units; mlp_pre/post's units are neurons."""
    pos = slice(None) if positions is None else positions
    if site == "pattern":
        return (slice(None), units, pos)
    if site in ("resid_pre", "resid_mid", "attn_out", "mlp_out"):
        return (slice(None), pos)
    return (slice(None), pos, units)


class Interventions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.m = init_families(d, 3)
        for fam, m in cls.m.items():
            for tag, toks in (("clean", CLEAN), ("corrupt", CORRUPT)):
                write_tokens(f"{d}/{fam}-{tag}-tok.h5", m, [toks])
                shell(f"embed -m {m} {d}/{fam}-{tag}-tok.h5 -o {d}/{fam}-{tag}-e.h5 && "
                      f"block -m {m} --save {ALL_SAVES} {d}/{fam}-{tag}-e.h5 -o {d}/{fam}-{tag}-cap.h5")
        cls.refs = {fam: Reference(cls.m[fam], fam) for fam in ("gpt2", "llama")}

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def block(self, fam, *args, out="out.h5"):
        path = f"{self.d}/{fam}-{out}"
        run("block", "-m", self.m[fam], *args, f"{self.d}/{fam}-clean-e.h5", "-o", path)
        return path

    def test_self_patch_is_identity(self):
        for fam in ("gpt2", "llama", "neox"):
            clean = read(f"{self.d}/{fam}-clean-cap.h5", "resid")
            for site in SITES:
                with self.subTest(fam=fam, site=site):
                    out = self.block(fam, "--patch", f"1.{site}", "--patch", f"0.{site}",
                                     "--patch-from", f"{self.d}/{fam}-clean-cap.h5")
                    self.assertTrue(np.array_equal(read(out, "resid"), clean), site)

    def test_patch_one_position_against_reference(self):
        units = {"q": "1,2", "k": "1", "v": "0", "pattern": "3", "z": "0,2", "head_out": "1",
                 "mlp_pre": "3,5,8", "mlp_post": "0:4,-1"}
        for fam in ("gpt2", "llama"):
            ref = self.refs[fam]
            source = {}
            ref.run(CORRUPT, cache=source)
            clean = read(f"{self.d}/{fam}-clean-cap.h5", "resid")[0]
            for site in SITES:
                with self.subTest(fam=fam, site=site):
                    spec = f"1.{site}@{P}" + (f"#{units[site]}" if site in units else "")
                    out = self.block(fam, "--patch", spec, "--patch-from", f"{self.d}/{fam}-corrupt-cap.h5")
                    got = read(out, "resid")[0]
                    self.assertTrue(np.array_equal(got[:P], clean[:P]), "positions before the patch changed")
                    n = source[(1, site)].shape[2] if site not in ("resid_pre", "resid_mid", "attn_out", "mlp_out") \
                        else 1
                    if site == "pattern":
                        n = source[(1, site)].shape[1]
                    u = list(range(n))
                    if site in units:
                        u = [int(x) for x in units[site].replace("0:4", "0,1,2,3").replace("-1", str(n - 1)).split(",")]

                    def patch(t, site=site, u=u):
                        cell = at(site, t, u, P)
                        t[cell] = source[(1, site)][cell]
                        return t
                    want = ref.run(CLEAN, {(1, site): patch})
                    close(self, got, want, f"{fam} {spec}")
                    with h5py.File(out) as f:
                        self.assertIn(f"patched {spec} from", f.attrs["modified"])

    def test_ablations_and_steering_against_reference(self):
        d = self.d
        vec = np.random.default_rng(4).standard_normal(64).astype(np.float32)
        for fam in ("gpt2", "llama"):
            ref = self.refs[fam]
            source = {}
            ref.run(CORRUPT, cache=source)
            D = read(f"{d}/{fam}-clean-cap.h5", "resid").shape[-1]
            with h5py.File(f"{d}/{fam}-vec.h5", "w") as f:
                f["steer/vector"] = vec[:D]

            def mean_z(t):
                t[:, :, 1] = source[(0, "z")][:, :, 1].mean(dim=(0, 1))
                return t

            def resample_post(t):
                t[:, 2:5, [3, 7]] = source[(1, "mlp_post")][:, 2:5, [3, 7]]
                return t

            def zero_head(t):
                t[:, :, 0] = 0
                return t

            def steer(t):
                t[:, 3:] += 2.5 * torch.as_tensor(vec[:D], dtype=torch.float64)
                return t
            cap = f"{d}/{fam}-corrupt-cap.h5"
            cases = [(["--ablate", f"0.z#1=mean:{cap}"], {(0, "z"): mean_z}, "mean-ablated 0.z#1"),
                     (["--ablate", f"1.mlp_post@2:5#3,7=resample:{cap}"], {(1, "mlp_post"): resample_post},
                      "resample-ablated"),
                     (["--ablate", "1.head_out#0=zero"], {(1, "head_out"): zero_head}, "zero-ablated 1.head_out#0"),
                     (["--add", f"1.resid_pre@3:={d}/{fam}-vec.h5", "--scale", "2.5"], {(1, "resid_pre"): steer},
                      "added 2.5 x")]
            for args, edits, words in cases:
                with self.subTest(fam=fam, args=args):
                    out = self.block(fam, *args)
                    close(self, read(out, "resid")[0], ref.run(CLEAN, edits), " ".join(args))
                    with h5py.File(out) as f:
                        self.assertIn(words, f.attrs["modified"])

    def test_steered_generation(self):
        """generate --add (and --ablate) on every step, with the KV cache, equals the reference
        re-run on the whole sequence at every step with the same hooks: the same greedy tokens
        and their log-probabilities."""
        d = self.d
        vec = np.random.default_rng(5).standard_normal(64).astype(np.float32)
        for fam in ("gpt2", "llama"):
            ref, m = self.refs[fam], self.m[fam]
            D = read(f"{d}/{fam}-clean-cap.h5", "resid").shape[-1]
            with h5py.File(f"{d}/{fam}-gvec.h5", "w") as f:
                f["steer/vector"] = vec[:D]
            out = f"{d}/{fam}-gen.h5"
            j = json.loads(run("generate", "-m", m, "--tokens", f"{d}/{fam}-clean-tok.h5", "-n", 6, "--temperature", 0,
                               "--ignore-eos", "--add", f"1.resid_pre={d}/{fam}-gvec.h5", "--scale", 3,
                               "--ablate", "0.z#1=zero", "--json", "-o", out).stdout)

            def steer(t):
                t += 3 * torch.as_tensor(vec[:D], dtype=torch.float64)
                return t

            def zero(t):
                t[:, :, 1] = 0
                return t
            seq, lps = list(CLEAN), []
            for _ in range(6):
                x = torch.as_tensor(ref.run(seq, {(1, "resid_pre"): steer, (0, "z"): zero}))[None]
                lp = torch.log_softmax(ref.ref.logits(x)[0, -1], dim=-1)
                seq.append(int(lp.argmax()))
                lps.append(float(lp.max()))
            self.assertEqual(j["generated_ids"], seq[len(CLEAN):], fam)
            close(self, j["logprobs"], lps, f"{fam} steered log-probabilities")
            with h5py.File(out) as f:
                self.assertIn("added 3 x", f.attrs["modified"])
        for args, words in ((["--patch", "1.q"], "--patch"), (["--add", f"1.resid_pre@2={d}/gpt2-gvec.h5"], "positions"),
                            (["--ablate", "1.pattern#0=zero"], "pattern"),
                            (["--ablate", f"1.z=resample:{d}/gpt2-corrupt-cap.h5"], "resample")):
            p = run("generate", "-m", self.m["gpt2"], "hello", "-n", 2, *args, check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn(words, p.stderr.decode())

    def test_steering_vector_against_reference(self):
        """steer: the mean stream entering a layer at each prompt's last token (or over all its
        tokens) over the positive prompts minus the negative ones, as the reference computes it
        prompt by prompt (the batches are padded)."""
        d = self.d
        pos, neg = ["I love you", "What a lovely day it is", "Joy"], ["I hate you", "A dreadful day"]
        for name, lines in (("pos", pos), ("neg", neg)):
            with open(f"{d}/{name}.txt", "w") as f:
                f.write("\n".join(lines) + "\n\n")
        for fam in ("gpt2", "llama"):
            ref, m = self.refs[fam], self.m[fam]
            for all_pos in (False, True):
                out = f"{d}/{fam}-steer.h5"
                run("steer", "-m", m, "-l", 1, "--positive", f"{d}/pos.txt", "--negative", f"{d}/neg.txt",
                    *(["--all-positions"] if all_pos else []), "-o", out)

                def mean(lines):
                    vs = []
                    for line in lines:
                        ids = [int(t) for t in run("tokenize", "-m", m, line, "--ids").stdout.split()]
                        cache = {}
                        ref.run(ids, cache=cache)
                        x = cache[(1, "resid_pre")][0].numpy()
                        vs.extend(x if all_pos else x[-1:])
                    return np.mean(vs, axis=0)
                with h5py.File(out) as f:
                    close(self, f["steer/vector"][()], mean(pos) - mean(neg), f"{fam} steering vector")
                    self.assertEqual(int(f["steer"].attrs["layer"]), 1)
        open(f"{d}/empty.txt", "w").close()
        for layer, negative, code, words in ((9, "neg.txt", 1, "--layer"), (1, "empty.txt", 2, "no prompts")):
            p = run("steer", "-m", self.m["gpt2"], "-l", layer, "--positive", f"{d}/pos.txt", "--negative",
                    f"{d}/{negative}", "-o", f"{d}/bad.h5", check=False)
            self.assertEqual(p.returncode, code, p.stderr)
            self.assertIn(words, p.stderr.decode())
            self.assertFalse(os.path.exists(f"{d}/bad.h5"))

    def test_sweeps_equal_single_runs(self):
        """block --sweep: every variant of a layer in one batch equals that variant run alone
        (block with the same edit, then score --value), within 1e-5 of the logits' scale; the
        clean metric is the run without edits."""
        d = self.d
        for fam in ("gpt2", "llama"):
            m, e, cap = self.m[fam], f"{d}/{fam}-clean-e.h5", f"{d}/{fam}-corrupt-cap.h5"
            score = ["score", "-m", m, "--from", "-", "--answer", " the", "--foil", " a", "--value"]
            clean = float(shell(f"block -m {m} {e} | " + " ".join(f"'{a}'" for a in score)))
            for kind, spec, extra in (("ablate-heads", "{l}.z#{u}=zero", []),
                                      ("ablate-neurons", "{l}.mlp_post#{u}=zero", []),
                                      ("patch-heads", "{l}.z#{u}", ["--patch-from", cap]),
                                      ("patch-positions", "{l}.resid_pre@{u}", ["--patch-from", cap])):
                out = f"{d}/{fam}-{kind}.h5"
                run("block", "-m", m, e, "--sweep", kind, "--answer", " the", "--foil", " a", *extra, "-o", out)
                with h5py.File(out) as f:
                    grid = f["sweep/metric"][()]
                    self.assertAlmostEqual(float(f["sweep"].attrs["clean"]), clean, delta=1e-5)
                units = range(grid.shape[1]) if kind != "ablate-neurons" else (0, 7, grid.shape[1] - 1)
                for layer in range(grid.shape[0]):
                    for u in units:
                        with self.subTest(fam=fam, kind=kind, layer=layer, unit=u):
                            opt = ["--patch", spec.format(l=layer, u=u)] if extra else \
                                ["--ablate", spec.format(l=layer, u=u)]
                            single = float(shell(f"block -m {m} {e} " + " ".join(opt + extra) + " | " +
                                                 " ".join(f"'{a}'" for a in score)))
                            self.assertAlmostEqual(float(grid[layer, u]), single, delta=1e-5)
        # Without --answer: the KL divergence of each variant's last next-token distribution from
        # the clean run's, as score's next_logprobs give it.
        for fam in ("gpt2", "llama"):
            m, e = self.m[fam], f"{d}/{fam}-clean-e.h5"

            def last_logprobs(opts):
                shell(f"block -m {m} {e} {opts} | score -m {m} --from - -o {d}/kl-score.h5")
                return read(f"{d}/kl-score.h5", "score/next_logprobs")[0, -1].astype(np.float64)
            clean = last_logprobs("")
            out = f"{d}/{fam}-kl.h5"
            run("block", "-m", m, e, "--sweep", "ablate-heads", "-o", out)
            with h5py.File(out) as f:
                grid = f["sweep/metric"][()]
                self.assertEqual(f["sweep"].attrs["metric"], "kl")
                self.assertEqual(float(f["sweep"].attrs["clean"]), 0.0)
            for layer, head in ((0, 0), (1, grid.shape[1] - 1)):
                with self.subTest(fam=fam, layer=layer, head=head):
                    lp = last_logprobs(f"--ablate {layer}.z#{head}=zero")
                    kl = float(np.sum(np.exp(clean) * (clean - lp)))
                    self.assertGreater(kl, 1e-5)
                    self.assertAlmostEqual(float(grid[layer, head]), kl, delta=1e-7)
        p = run("block", "-m", self.m["gpt2"], f"{d}/gpt2-clean-e.h5", "--sweep", "patch-heads", "--answer", " the",
                check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--patch-from", p.stderr.decode())

    def test_stage_tools_equal_block(self):
        """attend --patch and mlp --ablate/--add give what block gives for the same layer."""
        d, m = self.d, self.m["gpt2"]
        cap = f"{d}/gpt2-corrupt-cap.h5"
        shell(f"block -m {m} -L 0 {d}/gpt2-clean-e.h5 -o {d}/l0.h5")
        shell(f"attend -m {m} -l 1 --patch q@{P}#1 --patch head_out#2 --patch-from {cap} {d}/l0.h5 | "
              f"mlp -m {m} -l 1 --ablate mlp_post#5=zero --ablate resid_mid@2={'mean:' + cap} -o {d}/chain.h5")
        out = self.block("gpt2", "--patch", f"1.q@{P}#1", "--patch", "1.head_out#2", "--patch-from", cap,
                         "--ablate", "1.mlp_post#5=zero", "--ablate", f"1.resid_mid@2=mean:{cap}")
        self.assertTrue(np.array_equal(read(out, "resid"), read(f"{d}/chain.h5", "resid")))
        with h5py.File(f"{d}/chain.h5") as f:
            self.assertIn("patched q@4#1", f.attrs["modified"])
            self.assertIn("zero-ablated mlp_post#5", f.attrs["modified"])
        # attend patches from a stage file too (its /attn saves of the same layer)
        shell(f"attend -m {m} -l 1 --save v {d}/l0.h5 -o {d}/a1.h5")
        shell(f"attend -m {m} -l 1 --patch v --patch-from {d}/a1.h5 {d}/l0.h5 -o {d}/a1-self.h5")
        self.assertTrue(np.array_equal(read(f"{d}/a1.h5", "resid"), read(f"{d}/a1-self.h5", "resid")))

    def refused(self, tool, args, code, words):
        out = f"{self.d}/bad.h5"
        p = run(tool, "-m", self.m["gpt2"], *args, "-o", out, check=False)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, code, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn(words, err)
        self.assertFalse(os.path.exists(out))

    def test_bad_input(self):
        d = self.d
        e, cap = f"{d}/gpt2-clean-e.h5", f"{d}/gpt2-corrupt-cap.h5"
        write_tokens(f"{d}/short-tok.h5", self.m["gpt2"], [CLEAN[:5]])
        shell(f"embed -m {self.m['gpt2']} {d}/short-tok.h5 | block -m {self.m['gpt2']} --save q -o {d}/short-cap.h5")
        shell(f"attend -m {self.m['gpt2']} -l 0 {e} -o {d}/a0.h5")
        with h5py.File(f"{d}/wide.h5", "w") as f:
            f["steer/vector"] = np.zeros(7, np.float32)
        for tool, args, code, words in (
                ("attend", ["-l", "0", e, "--patch", "mlp_out", "--patch-from", cap], 2, "computed by mlp"),
                ("block", [e, "--patch", "1.q@99", "--patch-from", cap], 2, "positions of 1.q@99"),
                ("block", [e, "--patch", "1.z#9", "--patch-from", cap], 2, "units of 1.z#9"),
                ("block", [e, "--patch", "1.q"], 2, "--patch-from"),
                ("block", [e, "--patch", "q", "--patch-from", cap], 2, "L.SITE"),
                ("block", [e, "--patch", "1.query", "--patch-from", cap], 2, "no site 'query'"),
                ("block", [e, "--patch", "1.q", "--patch-from", self.m["llama"]], 1, "model file"),
                ("block", [e, "--patch", "1.q", "--patch-from", f"{d}/llama-corrupt-cap.h5"], 1, "was made with model"),
                ("block", [e, "--patch", "1.q", "--patch-from", f"{d}/short-cap.h5"], 1, "does not match"),
                ("block", [e, "--patch", "1.v", "--patch-from", f"{d}/gpt2-clean-e.h5"], 1, "has no values of v"),
                ("block", [e, "--add", f"1.resid_pre={d}/wide.h5"], 1, "takes a vector of"),
                ("block", [e, "--ablate", "1.z=half"], 2, "zero, mean:FILE or resample:FILE"),
                ("mlp", ["-l", "0", f"{d}/a0.h5", "--ablate", "resid_mid#1=zero"], 2, "no heads or neurons"),
                ("mlp", ["-l", "0", f"{d}/a0.h5", "--patch", "q", "--patch-from", cap], 2, "computed by attend")):
            with self.subTest(tool=tool, args=args):
                self.refused(tool, args, code, words)


if __name__ == "__main__":
    unittest.main()
