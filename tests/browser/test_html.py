"""inspect --html in a real browser (Debian's Chromium, headless, driven by drive.js through
playwright-core): the page loads without errors or network requests; hovering a cell shows its
query token, key token and weight as the file has them; the screenshot's colours are the PNG
renderer's at the same cells; hovering a token lights its row; a 1,024-token, 12-head page stays
usable. Exit 77 (skipped) where Chromium or playwright-core is missing (scripts/deps.sh --test
installs both)."""
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from qkvtest import read, read_png, run, shell, tmpdir  # noqa: E402

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FAMILIES = ["tiny", "llama-tiny", "pythia-tiny"]
ORANGE = (230, 81, 0)  # the outline of a lit row


def drive(page, head, cells):
    p = subprocess.run(["node", os.path.join(HERE, "drive.js"), page, str(head)] + [f"{q},{k}" for q, k in cells],
                       capture_output=True, timeout=300, cwd=HERE)
    if p.returncode != 0:
        raise AssertionError(f"drive.js failed: {p.stderr.decode()}")
    return json.loads(p.stdout)


def pixel(b64):
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(base64.b64decode(b64))
        f.flush()
        img, _ = read_png(f.name)
    return img[0, 0]


class Page(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        cls.d = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def check_page(self, path, heads, head_index, cells, against_png=True):
        """Drives the page of `path` (an activation file with /attn/pattern) and checks what a user
        sees; against_png: the colours against the PNG renderer's (too slow to decode at T = 1024)."""
        page, png = f"{path}.html", f"{path}.png"
        heads_arg = ",".join(map(str, heads))
        h = heads[head_index]
        run("inspect", path, "--pattern", "--heads", heads_arg, "--html", page)
        if against_png:
            run("inspect", path, "--pattern", "--heads", h, "--png", png)  # the enlarged head
            img, meta = read_png(png)
            lay = json.loads(meta["qkv-layout"])
            origin, c = lay["panels"][0], lay["cell"]
        got = drive(page, head_index, cells)
        self.assertEqual(got["errors"], [])
        self.assertEqual(got["thumbnails"], len(heads))
        self.assertEqual(got["shown_head"], h)
        with h5py.File(path) as f:
            pattern = f["attn/pattern"][0, h]
            scores = f["attn/scores"][0, h] if "attn/scores" in f else None
            text = [t.decode() if isinstance(t, bytes) else t for t in f["token_text"][0]]
        for probe in got["probes"]:
            q, k = probe["q"], probe["k"]
            lines = probe["tip"].split("\n")
            self.assertEqual(lines[:3], [f"head {h}", f"query {q} {json.dumps(text[q], ensure_ascii=False)}",
                                         f"key {k} {json.dumps(text[k], ensure_ascii=False)}"])
            masked = k > q if scores is None else bool(np.isinf(scores[q, k]))
            seen = pixel(probe["pixel_png"])
            if masked:
                self.assertEqual(lines[3], "masked")
                self.assertIn(tuple(seen), {(225, 225, 225), (170, 170, 170)})
            else:
                self.assertTrue(lines[3].startswith("weight "), lines)
                self.assertAlmostEqual(float(lines[3].split()[1]), float(pattern[q, k]), delta=0.5e-4 + 1 / 65534)
                self.assertNotIn(tuple(seen), {(225, 225, 225), (170, 170, 170)})
                if against_png:  # the PNG's colour at the cell's centre
                    want = img[origin["y"] + q * c + c // 2, origin["x"] + k * c + c // 2]
                    self.assertLessEqual(int(np.abs(seen.astype(int) - want).max()), 2, (q, k, seen, want))
        q0 = cells[0][0]
        self.assertEqual(got["lit_tokens"], [q0])
        self.assertLessEqual(int(np.abs(np.array(got["row_edge"]) - ORANGE).max()), 40, got["row_edge"])
        return got

    def test_every_family(self):
        for fam in FAMILIES:
            with self.subTest(fam=fam):
                d, m = self.d, f"{self.d}/{fam}.h5"
                run("model", "init", "--preset", fam, "--seed", 5, "-o", m, "-q")
                shell(f"tokenize -m {m} 'a fluffy blue creature roamed the <b>verdant</b> forest' "
                      f"| embed -m {m} | attend -m {m} -l 0 --save pattern,scores -o {d}/{fam}-l0.h5")
                n_heads = read(f"{d}/{fam}-l0.h5", "attn/pattern").shape[1]
                self.check_page(f"{d}/{fam}-l0.h5", list(range(n_heads)), n_heads - 1,
                                [(6, 2), (3, 3), (0, 5), (9, 0)])

    def test_long_input_stays_usable(self):
        """T = 1,024 with 12 heads: one canvas per head, not a node per cell."""
        T, H = 1024, 12
        rng = np.random.default_rng(0)
        logits = rng.normal(size=(1, H, T, T)).astype(np.float32) * 3
        logits[:, :, np.triu_indices(T, 1)[0], np.triu_indices(T, 1)[1]] = -np.inf
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p = (p / p.sum(-1, keepdims=True)).astype(np.float32)
        path = f"{self.d}/long.h5"
        with h5py.File(path, "w") as f:
            f.attrs.update(format="qkv-activations", version=np.int64(1), model_id="x", stage="attn", layer=np.int64(3))
            f["tokens"] = np.arange(T, dtype=np.int32)[None]
            f["token_text"] = np.array([[f" w{i}" for i in range(T)]], dtype=h5py.string_dtype())
            f["attn/pattern"] = p
            f["attn"].attrs["layer"] = np.int64(3)
        got = self.check_page(path, list(range(H)), 11, [(1000, 3), (1023, 1023), (5, 900), (512, 511)],
                              against_png=False)
        print(f"T = {T}, {H} heads: the page loaded in {got['load_ms']} ms, "
              f"{os.path.getsize(path + '.html') / 2**20:.1f} MiB", file=sys.stderr)


if __name__ == "__main__":
    if not os.path.exists(CHROMIUM) or not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        print(f"skipped: needs {CHROMIUM} and tests/browser/node_modules (scripts/deps.sh --test)")
        sys.exit(77)
    unittest.main(verbosity=2)
