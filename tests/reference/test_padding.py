"""Ragged batches: prompts of unequal length padded on the left or the right (tokenize --pad),
for GPT-2, the Llama family and GPT-NeoX (the presets tiny, llama-tiny, pythia-tiny). Each
sequence's results inside the padded batch, at its real tokens, equal its results alone: every
stage's /resid and saved tensors (embed, attend, mlp, block), the next-token prediction of
generate --from, score's log-probabilities and answers (one run with the mask, and windows
longer than the context), attribute's parts. Tolerance: max |padded - alone| <= 1e-5 * max
|alone| for every tensor compared; pads never seen by a real query (their pattern cells exactly
0); the mask carried through every stage; bad masks refused."""
import json
import os
import unittest

import h5py
import numpy as np

from qkvtest import read, run, shell, tmpdir
from test_inspect import read_png

REL_TOL = 1e-5
TEXTS = ["The cat sat on the mat and looked", "Hi", "Once upon a time"]
FAMILIES = ["tiny", "llama-tiny", "pythia-tiny"]
ATTN_SAVES = "pattern,q,k,v,z,head_out"


def close(tc, got, ref, what):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    tc.assertEqual(got.shape, ref.shape, f"{what}: shape")
    scale = max(np.abs(ref).max(), 1e-30)
    err = np.abs(got - ref).max()
    tc.assertLessEqual(err, REL_TOL * scale, f"{what}: max abs diff {err:.3g} > {REL_TOL} * {scale:.3g}")


def pipeline(d, model, tokens, tag):
    """embed | attend 0 | mlp 0 (saves) then block over the other layers (saves); the file of
    each stage."""
    s = {k: f"{d}/{tag}-{k}.h5" for k in ("embed", "attn", "mlp", "block")}
    shell(f"embed -m {model} {tokens} --save parts -o {s['embed']} && "
          f"attend -m {model} -l 0 --save {ATTN_SAVES} {s['embed']} -o {s['attn']} && "
          f"mlp -m {model} -l 0 --save pre,post,out {s['attn']} -o {s['mlp']} && "
          f"block -m {model} -L 1: --save resid_pre,pattern,head_out,mlp_out {s['mlp']} -o {s['block']}")
    return s


# Per-position datasets and which axes are positions (a pattern: query and key).
POSITION_AXES = {"/resid": (1,), "/embed/token": (1,), "/embed/pos": (1,), "/attn/pattern": (2, 3),
                 "/attn/q": (1,), "/attn/k": (1,), "/attn/v": (1,), "/attn/z": (1,), "/attn/head_out": (1,),
                 "/mlp/pre": (1,), "/mlp/post": (1,), "/mlp/out": (1,), "/blocks/1/resid_pre": (1,),
                 "/blocks/1/attn/pattern": (2, 3), "/blocks/1/attn/head_out": (1,), "/blocks/1/mlp/out": (1,)}


def real_part(x, axes, b, span):
    x = x[b:b + 1]
    for a in axes:
        x = np.take(x, range(*span), axis=a)
    return x


class PaddedEqualsAlone(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        with open(f"{d}/prompts.txt", "w") as f:
            f.write("\n".join(TEXTS) + "\n")
        cls.models = {}
        for fam in FAMILIES:
            m = cls.models[fam] = f"{d}/{fam}.h5"
            run("model", "init", "--preset", fam, "--seed", "5", "-o", m)
            for i, text in enumerate(TEXTS):
                run("tokenize", "-m", m, text, "-o", f"{d}/{fam}-alone{i}-tok.h5")
                pipeline(d, m, f"{d}/{fam}-alone{i}-tok.h5", f"{fam}-alone{i}")
            for side in ("left", "right"):
                tok = f"{d}/{fam}-{side}-tok.h5"
                run("tokenize", "-m", m, "--lines", "--pad", side, "-f", f"{d}/prompts.txt", "-o", tok)
                pipeline(d, m, tok, f"{fam}-{side}")

    def spans(self, fam, side):
        mask = read(f"{self.d}/{fam}-{side}-tok.h5", "/mask")
        out = []
        for row in mask:
            real = np.flatnonzero(row)
            out.append((real[0], real[-1] + 1))
        return mask, out

    def test_mask_and_positions(self):
        """The mask, the pad id, pads where the side says; positions over real tokens."""
        for fam in FAMILIES:
            for side in ("left", "right"):
                with self.subTest(fam=fam, side=side):
                    tok = f"{self.d}/{fam}-{side}-tok.h5"
                    mask, spans = self.spans(fam, side)
                    lengths = [len(read(f"{self.d}/{fam}-alone{i}-tok.h5", "/tokens")[0]) for i in range(len(TEXTS))]
                    self.assertEqual(mask.shape, (len(TEXTS), max(lengths)))
                    self.assertEqual(mask.sum(axis=1).tolist(), lengths)
                    for (b0, b1), n in zip(spans, lengths):
                        self.assertEqual((b0, b1), (mask.shape[1] - n, mask.shape[1]) if side == "left" else (0, n))
                    with h5py.File(tok) as f:
                        pad_id = int(f["/mask"].attrs["pad_id"])
                        self.assertTrue(np.all(f["/tokens"][()][mask == 0] == pad_id))
                    # every stage carries it forward
                    for stage in ("embed", "attn", "mlp", "block"):
                        np.testing.assert_array_equal(read(f"{self.d}/{fam}-{side}-{stage}.h5", "/mask"), mask)
                    # decode gives back the texts, without pads
                    out = run("tokenize", "-m", self.models[fam], "--decode", tok).stdout.decode()
                    self.assertEqual(out.split("\n")[:len(TEXTS)], TEXTS)

    def test_stages_equal_alone(self):
        for fam in FAMILIES:
            for side in ("left", "right"):
                _, spans = self.spans(fam, side)
                for stage in ("embed", "attn", "mlp", "block"):
                    with h5py.File(f"{self.d}/{fam}-{side}-{stage}.h5") as f:
                        padded = {n: f[n][()] for n in POSITION_AXES if n in f}
                    self.assertIn("/resid", padded)
                    for b, span in enumerate(spans):
                        with h5py.File(f"{self.d}/{fam}-alone{b}-{stage}.h5") as f:
                            for name, x in padded.items():
                                with self.subTest(fam=fam, side=side, stage=stage, seq=b, dataset=name):
                                    close(self, real_part(x, POSITION_AXES[name], b, span), f[name][()],
                                          f"{fam} {side} {stage} {name} sequence {b}")

    def test_pads_unseen(self):
        """A real query's pattern is exactly 0 on every pad key, in every head and layer."""
        for fam in FAMILIES:
            for side in ("left", "right"):
                mask, _ = self.spans(fam, side)
                for name, path in (("/attn/pattern", "attn"), ("/blocks/1/attn/pattern", "block")):
                    p = read(f"{self.d}/{fam}-{side}-{path}.h5", name)  # [batch, head, q, k]
                    for b in range(len(TEXTS)):
                        q = np.flatnonzero(mask[b])
                        k = np.flatnonzero(mask[b] == 0)
                        self.assertTrue(np.all(p[b][:, q][:, :, k] == 0), f"{fam} {side} {name} {b}")
                        np.testing.assert_allclose(p[b].sum(axis=-1), 1, rtol=1e-5)

    def test_generate_from(self):
        """generate --from predicts from each sequence's own last real token."""
        for fam in FAMILIES:
            for side in ("left", "right"):
                m = self.models[fam]
                padded = json.loads(run("generate", "-m", m, "--from", f"{self.d}/{fam}-{side}-block.h5",
                                        "--json", "--top", "20").stdout)
                for b in range(len(TEXTS)):
                    alone = json.loads(run("generate", "-m", m, "--from", f"{self.d}/{fam}-alone{b}-block.h5",
                                           "--json", "--top", "20").stdout)
                    with self.subTest(fam=fam, side=side, seq=b):
                        self.assertEqual([t["id"] for t in padded[b]["top"]], [t["id"] for t in alone["top"]])
                        close(self, [t["logprob"] for t in padded[b]["top"]], [t["logprob"] for t in alone["top"]],
                              "top log-probabilities")
                # the file says which position each sequence's logits are for: its last real token
                out = f"{self.d}/{fam}-{side}-logits.h5"
                run("generate", "-m", m, "--from", f"{self.d}/{fam}-{side}-block.h5", "-o", out)
                mask, _ = self.spans(fam, side)
                with h5py.File(out) as f:
                    pos = f["logits"].attrs["positions"]
                    self.assertEqual(pos.dtype, np.int64)
                    self.assertEqual(pos.tolist(), [[int(np.flatnonzero(r)[-1])] for r in mask])

    def test_score(self):
        """score of the padded batch, from tokens (one masked run; windows a sequence at a time)
        and from the stream, equals each text alone; pads are NaN; the answer at each last token."""
        for fam in FAMILIES:
            for side in ("left", "right"):
                m, d = self.models[fam], self.d
                _, spans = self.spans(fam, side)
                for how, args in (("one run", []), ("windows", ["--context", "4", "--stride", "2"])):
                    out = f"{d}/{fam}-{side}-score.h5"
                    j = json.loads(run("score", "-m", m, "--tokens", f"{d}/{fam}-{side}-tok.h5", *args,
                                       "--answer", " the", "--json", "-o", out).stdout)
                    lp = read(out, "/score/logprob")
                    stream = json.loads(run("score", "-m", m, "--from", f"{d}/{fam}-{side}-block.h5",
                                            "--answer", " the", "--json").stdout)
                    total, scored = 0.0, 0
                    for b, (b0, b1) in enumerate(spans):
                        with self.subTest(fam=fam, side=side, how=how, seq=b):
                            alone_out = f"{d}/{fam}-alone{b}-score.h5"
                            a = json.loads(run("score", "-m", m, "--tokens", f"{d}/{fam}-alone{b}-tok.h5", *args,
                                               "--answer", " the", "--json", "-o", alone_out).stdout)
                            alp = read(alone_out, "/score/logprob")[0]
                            self.assertTrue(np.all(np.isnan(np.delete(lp[b], range(b0, b1)))))
                            real = lp[b][b0:b1]
                            np.testing.assert_array_equal(np.isnan(real), np.isnan(alp))
                            if np.any(~np.isnan(alp)):
                                close(self, real[~np.isnan(real)], alp[~np.isnan(alp)], "log p")
                            close(self, [j["answers"][b]["logprob"]], [a["answers"][0]["logprob"]], "answer")
                            if how == "one run":
                                close(self, [stream["answers"][b]["logprob"]], [a["answers"][0]["logprob"]],
                                      "answer from the stream")
                            self.assertEqual(j["answers"][b]["position"], b1 - 1)
                            if a["tokens_scored"]:
                                total += a["mean_nats_per_token"] * a["tokens_scored"]
                                scored += a["tokens_scored"]
                    self.assertEqual(j["tokens_scored"], scored)
                    close(self, [j["mean_nats_per_token"]], [total / scored], "mean nats/token")

    def test_kl_of_itself(self):
        m, d = self.models["llama-tiny"], self.d
        base = f"{d}/kl-base.h5"
        run("score", "-m", m, "--tokens", f"{d}/llama-tiny-left-tok.h5", "-o", base)
        j = json.loads(run("score", "-m", m, "--tokens", f"{d}/llama-tiny-left-tok.h5", "--kl-base", base,
                           "--json").stdout)
        self.assertEqual(j["kl"]["max"], 0.0)
        mask = read(f"{d}/llama-tiny-left-tok.h5", "/mask").ravel()
        per = np.array([np.nan if v is None else v for v in j["kl"]["per_position"]])
        self.assertTrue(np.all(np.isnan(per[mask == 0])) and np.all(per[mask == 1] == 0))
        # a base with another padding is refused
        p = run("score", "-m", m, "--tokens", f"{d}/llama-tiny-right-tok.h5", "--kl-base", base, check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("padding", p.stderr.decode())

    def test_inspect_hatches_pads(self):
        """inspect --pattern --png draws every cell of a pad query or key hatched grey."""
        mask, _ = self.spans("tiny", "left")
        b = int(np.argmin(mask.sum(axis=1)))  # the shortest sequence: the most pads
        png = f"{self.d}/pads.png"
        run("inspect", f"{self.d}/tiny-left-attn.h5", "--pattern", "--head", 0, "--batch", b, "--png", png)
        img, text = read_png(png)
        lay = json.loads(text["qkv-layout"])
        c, x0, y0 = lay["cell"], lay["panels"][0]["x"], lay["panels"][0]["y"]
        grey = {(225, 225, 225), (170, 170, 170)}
        T = mask.shape[1]
        for q in range(T):
            for k in range(q + 1):
                cell = {tuple(img[y0 + q * c + c // 2 + dy, x0 + k * c + c // 2 + dx])
                        for dy in range(-1, 2) for dx in range(-1, 2)}
                if mask[b, q] and mask[b, k]:
                    self.assertFalse(cell <= grey, (q, k))
                else:
                    self.assertTrue(cell <= grey, (q, k, cell))

    def test_attribute(self):
        for fam in ("tiny", "pythia-tiny"):
            m, d = self.models[fam], self.d
            out = f"{d}/{fam}-attr.h5"
            run("attribute", "-m", m, "--tokens", f"{d}/{fam}-left-tok.h5", "--answer", " the", "--foil", " a",
                "-o", out)
            parts = read(out, "/attribution/parts")
            _, spans = self.spans(fam, "left")
            self.assertEqual(read(out, "/attribution/position").tolist(), [s[1] - 1 for s in spans])
            for b in range(len(TEXTS)):
                alone = f"{d}/{fam}-attr{b}.h5"
                run("attribute", "-m", m, "--tokens", f"{d}/{fam}-alone{b}-tok.h5", "--answer", " the",
                    "--foil", " a", "-o", alone)
                close(self, parts[b], read(alone, "/attribution/parts")[0], f"{fam} parts {b}")


class BadPadding(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.m = f"{d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "-o", cls.m)
        cls.tok = f"{d}/tok.h5"
        run("tokenize", "-m", cls.m, "a b c d", "e", "--pad", "right", "-o", cls.tok)

    def refused(self, args, stdin=None, code=1, words=()):
        out = f"{self.d}/out.h5"
        if os.path.exists(out):
            os.remove(out)
        p = run(*args, "-o", out, stdin=stdin, check=False)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, code, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        for w in words:
            self.assertIn(w, err)
        self.assertFalse(os.path.exists(out))

    def with_mask(self, mask):
        path = f"{self.d}/bad.h5"
        with h5py.File(self.tok) as src, h5py.File(path, "w") as f:
            for k, v in src.attrs.items():
                f.attrs[k] = v
            for k in ("tokens", "token_text"):
                src.copy(k, f)
            f["mask"] = np.asarray(mask, np.int32)
        return path

    def test_unequal_without_pad(self):
        self.refused(["tokenize", "-m", self.m, "a b c", "d"], code=1, words=("--pad",))

    def test_pad_with_a_listing(self):
        self.refused(["tokenize", "-m", self.m, "--ids", "--pad", "left", "a b c", "d"], code=2)

    def test_bad_masks(self):
        n = read(self.tok, "/tokens").shape[1]
        for mask, words in ((np.ones((2, n + 1)), ("/mask", "does not match")),
                            ([[1] * n, [1, 0, 1] + [0] * (n - 3)], ("between",)),
                            ([[1] * n, [0] * n], ("no real token",)),
                            ([[1] * n, [2] * n], ("value 2",))):
            with self.subTest(words=words):
                bad = self.with_mask(mask)
                self.refused(["embed", "-m", self.m, bad], words=words)
                self.refused(["score", "-m", self.m, "--tokens", bad], words=words)

    def test_padded_context(self):
        emb = f"{self.d}/emb.h5"
        run("embed", "-m", self.m, self.tok, "-o", emb)
        self.refused(["attend", "-m", self.m, "-l", "0", emb, "--context", emb], code=2, words=("padded",))


if __name__ == "__main__":
    unittest.main()
