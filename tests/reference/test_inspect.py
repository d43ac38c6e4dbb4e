"""inspect and the interventions of attend, checked against numpy and by their effects."""
import json
import os
import re
import subprocess
import unittest

import h5py
import numpy as np

from qkvtest import SVG, hex_of, read, read_png, read_svg, run, shell, tmpdir, tool


class Inspect(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        d = cls.d = cls.tmp.name
        cls.model = f"{d}/tiny.h5"
        run("model", "init", "--preset", "tiny", "--seed", 5, "-o", cls.model, "-q")
        shell(f"tokenize -m {cls.model} 'a fluffy blue creature roamed the verdant forest' | embed -m {cls.model} -o {d}/e.h5")
        run("attend", "-m", cls.model, "-l", 0, "--save", "pattern,scores,head_out,out", f"{d}/e.h5", "-o", f"{d}/a.h5")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_json_statistics_match_numpy(self):
        j = json.loads(run("inspect", f"{self.d}/a.h5", "--json").stdout)
        self.assertEqual(j["stage"], "attn")
        self.assertEqual(j["tokens"][0][1], " fluffy")
        with h5py.File(f"{self.d}/a.h5") as f:
            for name in ("resid", "attn/pattern", "attn/head_out", "attn/scores"):
                x = f[name][()].astype(np.float64)
                fin = x[np.isfinite(x)]
                d = j["datasets"]["/" + name]
                self.assertEqual(d["shape"], list(x.shape))
                for k, v in (("min", fin.min()), ("max", fin.max()), ("mean", fin.mean()), ("std", fin.std())):
                    self.assertAlmostEqual(d[k], v, delta=1e-6 * max(1, abs(v)), msg=f"{name} {k}")
                self.assertEqual(d["inf"], int(np.isinf(x).sum()))
            r = f["resid"][()].astype(np.float64)
            np.testing.assert_allclose(j["datasets"]["/resid"]["l2_per_position"], np.linalg.norm(r, axis=-1), rtol=1e-6)
        out = run("inspect", f"{self.d}/a.h5:/resid", "--slice", "0,2,0:3").stdout.decode().splitlines()
        vals = [float(l.split("\t")[1]) for l in out[1:]]
        np.testing.assert_allclose(vals, read(f"{self.d}/a.h5", "resid")[0, 2, 0:3], rtol=1e-5)

    def test_png_of_a_hand_made_pattern(self):
        p = np.zeros((1, 1, 4, 4), dtype=np.float32)
        p[0, 0] = [[1, 0, 0, 0], [0.2, 0.8, 0, 0], [0.1, 0.3, 0.6, 0], [0.0, 0.25, 0.25, 0.5]]
        path = f"{self.d}/hand.h5"
        with h5py.File(path, "w") as f:
            f.attrs.update(format="qkv-activations", version=np.int64(1), model_id="x", stage="attn", layer=np.int64(0))
            f["tokens"] = np.array([[1, 2, 3, 4]], dtype=np.int32)
            f["token_text"] = np.array([["a", " b", " c", " d"]], dtype=object)
            f["attn/pattern"] = p
            f["attn"].attrs["layer"] = np.int64(0)
        run("inspect", path, "--pattern", "--head", 0, "--png", f"{self.d}/hand.png")
        img, text = read_png(f"{self.d}/hand.png")
        lay = json.loads(text["qkv-layout"])
        c, x0, y0 = lay["cell"], lay["panels"][0]["x"], lay["panels"][0]["y"]
        self.assertEqual(img.shape[1] > x0 + 4 * c and img.shape[0] > y0 + 4 * c, True)
        px = lambda q, k: img[y0 + q * c + c // 2, x0 + k * c + c // 2]
        bright = lambda q, k: int(px(q, k).sum())
        # brighter where the value is larger (viridis rises in lightness)
        order = sorted(((p[0, 0, q, k], bright(q, k)) for q in range(4) for k in range(q + 1)))
        for (v1, b1), (v2, b2) in zip(order, order[1:]):
            if v2 > v1:
                self.assertGreater(b2, b1, f"value {v2} not brighter than {v1}")
        # masked cells (above the diagonal, exactly 0) have the masked colour, never a value's
        masked = {tuple(img[y0 + q * c + c // 2 + dy, x0 + k * c + c // 2 + dx]) for q in range(3) for k in range(q + 1, 4)
                  for dy in range(-1, 2) for dx in range(-1, 2)}
        self.assertTrue(masked <= {(225, 225, 225), (170, 170, 170)}, masked)
        self.assertNotEqual(tuple(px(3, 0)), (225, 225, 225))  # the visible 0.0 cell is not grey

    def test_svg_has_the_png_layout_colours_and_real_text(self):
        p = np.zeros((1, 2, 4, 4), dtype=np.float32)
        p[0, 0] = [[1, 0, 0, 0], [0.2, 0.8, 0, 0], [0.1, 0.3, 0.6, 0], [0.0, 0.25, 0.25, 0.5]]
        p[0, 1] = [[1, 0, 0, 0], [0.5, 0.5, 0, 0], [0.9, 0.05, 0.05, 0], [0.4, 0.3, 0.2, 0.1]]
        path = f"{self.d}/svg.h5"
        tokens = ["<a&>", " \u65e5\u672c", " \u00e9t\u00e9", "\x01"]  # markup, CJK (no glyph in the PNG font), Latin-1, a control
        with h5py.File(path, "w") as f:
            f.attrs.update(format="qkv-activations", version=np.int64(1), model_id="x", stage="attn", layer=np.int64(0))
            f["tokens"] = np.array([[1, 2, 3, 4]], dtype=np.int32)
            f["token_text"] = np.array([tokens], dtype=h5py.string_dtype())
            f["attn/pattern"] = p
            f["attn"].attrs["layer"] = np.int64(0)
        out = run("inspect", path, "--pattern", "--heads", "all", "--svg", f"{self.d}/p.svg").stdout
        run("inspect", path, "--pattern", "--heads", "all", "--png", f"{self.d}/p.png")
        img, text = read_png(f"{self.d}/p.png")
        root, meta, paint_at = read_svg(f"{self.d}/p.svg")
        self.assertEqual(meta["qkv-layout"], text["qkv-layout"])  # the same layout, the same size
        self.assertEqual((int(root.get("width")), int(root.get("height"))), (img.shape[1], img.shape[0]))
        self.assertIn(f"wrote {self.d}/p.svg ({img.shape[1]} x {img.shape[0]})".encode(), out)
        lay = json.loads(meta["qkv-layout"])
        c = lay["cell"]
        for h, origin in enumerate(lay["panels"]):
            for q in range(4):
                for k in range(4):
                    x, y = origin["x"] + k * c + c // 2, origin["y"] + q * c + c // 2
                    if k > q:
                        self.assertEqual(paint_at(x, y), "url(#masked)", (h, q, k))
                    else:  # the PNG's colour at the cell's centre
                        self.assertEqual(paint_at(x, y), hex_of(img[y, x]), (h, q, k))
        # viridis at its ends (matplotlib's #440154 and #fde725, within the fit's 4/255)
        o = lay["panels"][0]
        ends = {(0, 0): (0xfd, 0xe7, 0x25), (3, 0): (0x44, 0x01, 0x54)}
        for (q, k), want in ends.items():
            got = paint_at(o["x"] + k * c + c // 2, o["y"] + q * c + c // 2)
            got = [int(got[i:i + 2], 16) for i in (1, 3, 5)]
            self.assertLessEqual(max(abs(a - b) for a, b in zip(got, want)), 4, (q, k, got))
        labels = [t.text for t in root.iter(SVG + "text")]
        self.assertIn("<a&>", labels)                    # escaped in the file, the text itself when parsed
        self.assertIn("\u00b7\u65e5\u672c", labels)    # real CJK text (the PNG draws \u{65E5})
        self.assertIn("\u00b7\u00e9t\u00e9", labels)
        self.assertIn("\\u{1}", labels)                  # a control character XML cannot hold
        # a signed 2-D slice and the loss curve are SVG too, with the PNG's size
        run("inspect", f"{self.d}/a.h5:/resid", "--slice", "0,:,:", "--svg", f"{self.d}/r.svg")
        run("inspect", f"{self.d}/a.h5:/resid", "--slice", "0,:,:", "--png", f"{self.d}/r.png")
        img, text = read_png(f"{self.d}/r.png")
        root, meta, paint_at = read_svg(f"{self.d}/r.svg")
        lay = json.loads(meta["qkv-layout"])
        for q, k in ((0, 0), (3, 7), (lay["rows"] - 1, lay["cols"] - 1)):
            x, y = lay["panels"][0]["x"] + k * lay["cell"] + 1, lay["panels"][0]["y"] + q * lay["cell"] + 1
            self.assertEqual(paint_at(x, y), hex_of(img[y, x]), (q, k))
        for bad in (["--png", f"{self.d}/x.png", "--svg", f"{self.d}/x.svg"], ["--svg", "-"]):
            p = run("inspect", path, "--pattern", *bad, check=False)
            self.assertEqual(p.returncode, 2, bad)
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        self.assertFalse(os.path.exists(f"{self.d}/x.png") or os.path.exists(f"{self.d}/x.svg"))

    def test_png_grid_and_slice(self):
        out = run("inspect", f"{self.d}/a.h5", "--pattern", "--heads", "all", "--png", f"{self.d}/all.png").stdout
        img, text = read_png(f"{self.d}/all.png")
        self.assertEqual(len(json.loads(text["qkv-layout"])["panels"]), 4)
        self.assertIn(f"({img.shape[1]} x {img.shape[0]})".encode(), out)
        run("inspect", f"{self.d}/a.h5:/resid", "--slice", "0,:,:", "--png", f"{self.d}/resid.png")
        img, _ = read_png(f"{self.d}/resid.png")
        self.assertGreater(img.shape[0], 11)

    def test_term_is_stable_under_a_fixed_width(self):
        args = [f"{self.d}/a.h5", "--pattern", "--head", 2, "--term", "--width", 40]
        a = run("inspect", *args, "--color", "always").stdout
        b = run("inspect", *args, "--color", "always").stdout
        self.assertEqual(a, b)
        self.assertIn(b"\x1b[48;2;", a)
        for env, extra in (({}, []), ({"NO_COLOR": "1"}, []), ({}, ["--color", "never"]), ({}, ["--no-color"])):
            plain = subprocess.run([tool("inspect"), *map(str, args), *extra], stdout=subprocess.PIPE,
                                   env=dict(os.environ, **env), check=True).stdout.decode()
            self.assertNotIn("\x1b", plain, (env, extra))  # a pipe gets colour only with --color always
            for line in plain.splitlines()[1:]:
                self.assertLessEqual(len(line), 40)

    def test_term_on_a_terminal(self):
        """On a terminal (script gives one): colour unless NO_COLOR, and the terminal's own width."""
        def on_tty(cmd, env=""):
            return subprocess.run(["script", "-qec", f"stty cols 50; {env} {tool('inspect')} {cmd}", "/dev/null"],
                                  stdout=subprocess.PIPE, check=True).stdout.decode().replace("\r", "")
        wide = f"{self.d}/a.h5:/attn/out --slice 0,:,: --term"
        self.assertIn("\x1b[48;2;", on_tty(wide))
        plain = on_tty(wide, "NO_COLOR=1")
        self.assertNotIn("\x1b[48", plain)
        lines = plain.splitlines()[1:]
        self.assertTrue(lines)
        self.assertEqual(max(len(line) for line in lines), 50)  # 64 columns of d_model cut to fit

    def test_axes_named_by_dimension_labels(self):
        """A 2-D picture names its axes by the dataset's dimension labels (qkv's own, or any
        writer's), and falls back to row and column."""
        def title(target, *args):
            out = subprocess.run([tool("inspect"), target, *args, "--term", "--width", "40"], stdout=subprocess.PIPE,
                                 env=dict(os.environ, NO_COLOR="1"), check=True).stdout.decode()
            return out.splitlines()[0]
        self.assertIn("(query_pos down, key_pos across)", title(f"{self.d}/a.h5:/attn/pattern", "--slice", "0,1,:,:"))
        self.assertIn("(pos down, d_model across)", title(f"{self.d}/a.h5:/attn/out", "--slice", "0,:,:"))
        with h5py.File(f"{self.d}/labels.h5", "w") as f:
            d = f.create_dataset("grid", data=np.arange(12, dtype=np.float32).reshape(3, 4))
            d.dims[0].label, d.dims[1].label = "layer", "head"
            f.create_dataset("plain", data=np.ones((2, 2), np.float32))
        self.assertIn("(layer down, head across)", title(f"{self.d}/labels.h5:/grid"))
        self.assertIn("(row down, column across)", title(f"{self.d}/labels.h5:/plain"))

    def test_text_coloured_by_a_dataset(self):
        """--text prints each sequence's tokens with their values (plain) or coloured by them:
        the diverging map for signed values, viridis from the lowest to the highest otherwise."""
        d = self.d
        shell(f"tokenize -m {self.model} 'a b c d' -o {d}/text.h5")
        with h5py.File(f"{d}/text.h5", "a") as f:
            toks = [t.decode() for t in f["token_text"][0]]
            n = len(toks)
            f["up"] = np.arange(n, dtype=np.float32)[None, :]
            f["signed"] = (np.arange(n, dtype=np.float32) - 1)[None, :]
            f["wide"] = np.arange(3 * n, dtype=np.float32).reshape(1, n, 3)
        out = run("inspect", f"{d}/text.h5:/up", "--text").stdout.decode().splitlines()
        self.assertIn(f"dark 0 to bright {n - 1}", out[0])
        self.assertEqual(out[1], "".join(f"{t}[{i}]" for i, t in enumerate(toks)))
        out = run("inspect", f"{d}/text.h5:/wide", "--text", "--slice", ":,:,2").stdout.decode().splitlines()
        self.assertEqual(out[1], "".join(f"{t}[{3 * i + 2}]" for i, t in enumerate(toks)))
        col = run("inspect", f"{d}/text.h5:/signed", "--text", "--color", "always").stdout.decode()
        self.assertIn("blue -", col.splitlines()[0])
        self.assertIn("\x1b[48;2;247;247;247m", col)  # the token whose value is 0: the map's white
        p = run("inspect", f"{d}/text.h5:/wide", "--text", check=False)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--slice", p.stderr.decode())
        # the same colours as SVG (a rectangle under each token), PNG and HTML (a span each)
        bgs = re.findall(r"\x1b\[48;2;(\d+);(\d+);(\d+)m", col)
        want = ["#%02x%02x%02x" % tuple(map(int, c)) for c in bgs]
        run("inspect", f"{d}/text.h5:/signed", "--text", "--svg", f"{d}/text.svg")
        run("inspect", f"{d}/text.h5:/signed", "--text", "--png", f"{d}/text.png")
        root, meta, paint_at = read_svg(f"{d}/text.svg")
        img, text = read_png(f"{d}/text.png")
        self.assertEqual(meta["qkv-layout"], text["qkv-layout"])
        cells = json.loads(meta["qkv-layout"])
        self.assertEqual([paint_at(x + 1, y + 1) for x, y in cells], want)
        self.assertEqual([hex_of(img[y + 1, x + 1]) for x, y in cells], want)
        run("inspect", f"{d}/text.h5:/signed", "--text", "--html", f"{d}/text.html")
        with open(f"{d}/text.html", encoding="utf-8") as f:
            page = f.read()
        spans = re.findall(r'<span style="background:(#[0-9a-f]{6});[^"]*" title="position (\d+): ([^"]*)">([^<]*)</span>', page)
        self.assertEqual([s[0] for s in spans], want)
        self.assertEqual([float(s[2]) for s in spans], [i - 1.0 for i in range(n)])
        self.assertEqual([s[3] for s in spans], [t.replace("<", "&lt;") for t in toks])

    def test_diff_with_itself_is_zero(self):
        j = json.loads(run("inspect", f"{self.d}/a.h5", "--diff", f"{self.d}/a.h5", "--json").stdout)
        for name, d in j["datasets"].items():
            self.assertEqual(d.get("max_abs", 0), 0, name)
        self.assertEqual(j["only_in_a"], [])
        self.assertFalse(j["differ"])

    def test_diff_exits_1_when_files_differ(self):
        """As diff, cmp and h5diff: exit 0 when the files agree (within --tolerance), 1 when
        they differ; the verdict is the last line."""
        d, m = self.d, self.model
        run("attend", "-m", m, "-l", 0, "--scale-head", "1=0.999", f"{d}/e.h5", "-o", f"{d}/near.h5")
        p = run("inspect", f"{d}/a.h5", "--diff", f"{d}/near.h5", check=False)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stdout.decode().splitlines()[-1], "the files differ")
        biggest = max(v.get("max_abs", 0) for v in json.loads(
            run("inspect", f"{d}/a.h5", "--diff", f"{d}/near.h5", "--json", check=False).stdout)["datasets"].values())
        p = run("inspect", f"{d}/a.h5", "--diff", f"{d}/near.h5", "--tolerance", biggest * 2, check=False)
        self.assertEqual(p.returncode, 1, "/attn saves and the modified attribute aside, only values differ")
        p = run("inspect", f"{d}/e.h5", "--diff", f"{d}/e.h5", "--tolerance", 0.1, check=False)
        self.assertEqual(p.returncode, 0, p.stdout)
        p = run("inspect", f"{d}/e.h5", "--diff", f"{d}/a.h5", check=False)
        self.assertEqual(p.returncode, 1)  # datasets only in one of them

    def test_ablating_every_head_leaves_only_b_O(self):
        d, m = self.d, self.model
        run("attend", "-m", m, "-l", 0, "--ablate-heads", "0,1,2,3", f"{d}/e.h5", "-o", f"{d}/abl.h5")
        b_O = read(m, "blocks/0/attn/b_O")
        np.testing.assert_allclose(read(f"{d}/abl.h5", "resid"), read(f"{d}/e.h5", "resid") + b_O, rtol=0, atol=1e-7)
        with h5py.File(f"{d}/abl.h5") as f:
            self.assertIn("ablated heads 0,1,2,3", f.attrs["modified"])
        run("attend", "-m", m, "-l", 0, "--only-heads", "1", "--save", "head_out", f"{d}/e.h5", "-o", f"{d}/only.h5")
        ho = read(f"{d}/only.h5", "attn/head_out")
        self.assertEqual(np.abs(ho[:, :, [0, 2, 3]]).max(), 0)
        full = read(f"{d}/a.h5", "attn/head_out")
        np.testing.assert_allclose(ho[:, :, 1], full[:, :, 1], rtol=1e-6)
        run("attend", "-m", m, "-l", 0, "--scale-head", "2=0.5", "--save", "head_out", f"{d}/e.h5", "-o", f"{d}/sc.h5")
        np.testing.assert_allclose(read(f"{d}/sc.h5", "attn/head_out")[:, :, 2], 0.5 * full[:, :, 2], rtol=1e-5, atol=1e-9)

    def test_patching_a_head_with_its_own_output_changes_nothing(self):
        d, m = self.d, self.model
        run("attend", "-m", m, "-l", 0, "--patch-from", f"{d}/a.h5", "--patch-heads", "1,3",
            "--save", "head_out", f"{d}/e.h5", "-o", f"{d}/p.h5")
        j = json.loads(run("inspect", f"{d}/a.h5", "--diff", f"{d}/p.h5", "--json", check=False).stdout)
        self.assertLess(j["datasets"]["/resid"]["max_rel"], 1e-6)
        with h5py.File(f"{d}/p.h5") as f:
            self.assertIn("patched heads 1,3", f.attrs["modified"])
        # patching from another run does change the stream, at the patched heads' positions
        shell(f"tokenize -m {m} 'a fluffy red creature roamed the verdant forest' | embed -m {m} "
              f"| attend -m {m} -l 0 --save head_out -o {d}/other.h5")
        run("attend", "-m", m, "-l", 0, "--patch-from", f"{d}/other.h5", "--patch-heads", "0",
            f"{d}/e.h5", "-o", f"{d}/p2.h5")
        j = json.loads(run("inspect", f"{d}/a.h5", "--diff", f"{d}/p2.h5", "--json", check=False).stdout)
        self.assertGreater(j["datasets"]["/resid"]["max_rel"], 1e-4)
        self.assertEqual(j["datasets"]["/resid"]["most_changed"][0]["position"] >= 2, True)

    def test_loss_curve(self):
        path = f"{self.d}/trained.h5"
        n = 40
        train = np.linspace(7.0, 3.0, n).astype(np.float32)
        val = np.full(n, np.nan, dtype=np.float32)
        val[9::10] = [6.0, 5.0, 4.5, 4.2]
        with h5py.File(path, "w") as f:
            f.attrs["model_id"] = "hand-made"
            f["train/log/step"] = np.arange(n, dtype=np.int32)
            f["train/log/lr"] = np.full(n, 1e-3, dtype=np.float32)
            f["train/log/train_loss"] = train
            f["train/log/val_loss"] = val
            f["train"].attrs["val_nats_per_char"] = 1.75
        table = run("inspect", path, "--loss").stdout.decode().splitlines()
        self.assertEqual(table[0], "step\tlr\ttrain_loss\tval_loss")
        self.assertEqual([r.split("\t")[0] for r in table[1:5]], ["10", "20", "30", "40"])
        self.assertEqual([float(r.split("\t")[3]) for r in table[1:5]], [6.0, 5.0, 4.5, 4.2])
        self.assertIn("# val_nats_per_char 1.75", table)
        run("inspect", path, "--loss", "--png", f"{self.d}/loss.png")
        img, text = read_png(f"{self.d}/loss.png")
        lay = json.loads(text["qkv-plot"])
        to_px = lambda step, loss: (
            lay["x0"] + round((step - lay["step_lo"]) / (lay["step_hi"] - lay["step_lo"]) * (lay["w"] - 1)),
            lay["y0"] + round((lay["loss_hi"] - loss) / (lay["loss_hi"] - lay["loss_lo"]) * (lay["h"] - 1)))
        self.assertLessEqual(lay["loss_lo"], 3.0)
        self.assertGreaterEqual(lay["loss_hi"], 7.0)
        for step, v in ((10, 6.0), (20, 5.0), (30, 4.5), (40, 4.2)):  # held-out points, orange
            x, y = to_px(step, v)
            r, g, b = img[y, x]
            self.assertTrue(r > 180 and b < 80, (step, img[y, x]))
        x, y = to_px(15, train[14])  # on the training curve, blue
        self.assertTrue(any(img[y + dy, x][2] > 200 and img[y + dy, x][0] < 160 for dy in (-1, 0, 1)))
        run("inspect", path, "--loss", "--svg", f"{self.d}/loss.svg")
        root, meta, paint_at = read_svg(f"{self.d}/loss.svg")
        self.assertEqual(json.loads(meta["qkv-plot"]), lay)
        lines = {l.get("stroke"): l.get("points").split() for l in root.iter(SVG + "polyline")}
        self.assertEqual(len(lines["#78a0dc"]), n)  # the training loss, every step
        self.assertEqual(lines["#d75f14"], [f"{x},{y}" for x, y in (to_px(s, v) for s, v in
                                                                     ((10, 6.0), (20, 5.0), (30, 4.5), (40, 4.2)))])
        p = run("inspect", self.model, "--loss", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn(b"no training log", p.stderr)


class Lens(unittest.TestCase):
    """inspect --lens: every layer's top next token and its probability equal what generate
    --from says of the same stream, for each family; from a capture or from stage files."""

    FAMILIES = ["tiny", "llama-tiny", "pythia-tiny"]

    @classmethod
    def setUpClass(cls):
        cls.tmp = tmpdir()
        cls.d = cls.tmp.name

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def generate_says(self, model, stream):
        """Top id and probability at every position, from generate --from's logits."""
        out = f"{stream}.logits.h5"
        run("generate", "-m", model, "--from", stream, "--all-positions", "-o", out)
        l = read(out, "logits")[0].astype(np.float64)  # [pos, vocab]
        p = np.exp(l - l.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return l.argmax(-1), p.max(-1)

    def test_lens_equals_generate_from_at_every_layer(self):
        for fam in self.FAMILIES:
            with self.subTest(fam=fam):
                d, m = self.d, f"{self.d}/{fam}.h5"
                run("model", "init", "--preset", fam, "--seed", 7, "-o", m, "-q")
                n_layers = json.loads(run("model", "info", m, "--json").stdout)["config"]["n_layers"]
                shell(f"tokenize -m {m} 'the quick brown fox jumps over the lazy dog' | embed -m {m} -o {d}/{fam}-e.h5")
                run("block", "-m", m, "--save", "resid_pre", f"{d}/{fam}-e.h5", "-o", f"{d}/{fam}-cap.h5")
                j = json.loads(run("inspect", f"{d}/{fam}-cap.h5", "--lens", "-m", m, "--json").stdout)
                self.assertEqual(j["streams"], [f"pre {l}" for l in range(n_layers)] + [f"post {n_layers - 1}"])
                self.assertEqual(j["tokens"][1], " quick")
                stages = [f"{d}/{fam}-e.h5"]  # the stream entering each layer, then the last
                for l in range(1, n_layers + 1):
                    stages.append(f"{d}/{fam}-post{l - 1}.h5")
                    run("block", "-m", m, "--layers", f"0:{l}", f"{d}/{fam}-e.h5", "-o", stages[-1])
                for row, stream in zip(j["top"], stages):
                    ids, probs = self.generate_says(m, stream)
                    self.assertEqual([c["id"] for c in row], ids.tolist(), stream)
                    np.testing.assert_allclose([c["prob"] for c in row], probs, rtol=1e-6, err_msg=stream)
                # the stage files of a pipeline give the same rows, labelled by their stage
                run("attend", "-m", m, "-l", 0, f"{d}/{fam}-e.h5", "-o", f"{d}/{fam}-mid0.h5")
                k = json.loads(run("inspect", f"{d}/{fam}-e.h5", f"{d}/{fam}-mid0.h5", stages[-1], "--lens",
                                   "-m", m, "--json").stdout)
                self.assertEqual(k["streams"], ["pre 0", "mid 0", f"post {n_layers - 1}"])
                self.assertEqual(k["top"][0], j["top"][0])
                self.assertEqual(k["top"][2], j["top"][-1])
                ids, _ = self.generate_says(m, f"{d}/{fam}-mid0.h5")
                self.assertEqual([c["id"] for c in k["top"][1]], ids.tolist())

    def test_lens_pictures_and_bad_input(self):
        d, m = self.d, f"{self.d}/lens-tiny.h5"
        run("model", "init", "--preset", "tiny", "--seed", 3, "-o", m, "-q")
        shell(f"tokenize -m {m} 'a fluffy blue creature' | embed -m {m} | block -m {m} --save resid_pre -o {d}/cap.h5")
        j = json.loads(run("inspect", f"{d}/cap.h5", "--lens", "-m", m, "--json").stdout)
        run("inspect", f"{d}/cap.h5", "--lens", "-m", m, "--png", f"{d}/lens.png")
        run("inspect", f"{d}/cap.h5", "--lens", "-m", m, "--svg", f"{d}/lens.svg")
        img, text = read_png(f"{d}/lens.png")
        root, meta, paint_at = read_svg(f"{d}/lens.svg")
        lay = json.loads(text["qkv-layout"])
        self.assertEqual(json.loads(meta["qkv-layout"]), lay)
        self.assertEqual((lay["rows"], lay["cols"]), (len(j["streams"]), len(j["tokens"])))
        for r in range(lay["rows"]):
            for c in range(lay["cols"]):
                x, y = lay["x"] + c * lay["cell_w"] + lay["cell_w"] - 2, lay["y"] + r * lay["cell_h"] + lay["cell_h"] - 2
                self.assertEqual(paint_at(x, y), hex_of(img[y, x]), (r, c))
        # viridis: a probability near 0 is matplotlib's #440154 (a random model's are all small)
        for r, row in enumerate(j["top"]):
            for k, c in enumerate(row):
                if c["prob"] < 0.005:
                    px = img[lay["y"] + r * lay["cell_h"] + lay["cell_h"] - 2, lay["x"] + k * lay["cell_w"] + lay["cell_w"] - 2]
                    self.assertLessEqual(np.abs(px - [0x44, 0x01, 0x54]).max(), 4, (r, k, px))
        run("inspect", f"{d}/cap.h5", "--lens", "-m", m, "--html", f"{d}/lens.html")
        with open(f"{d}/lens.html", encoding="utf-8") as f:
            cells = re.findall(r'<td style="background:(#[0-9a-f]{6});[^"]*" title="[^"]*: p = ([0-9.e-]+)">', f.read())
        self.assertEqual(len(cells), lay["rows"] * lay["cols"])
        for (colour, p), c in zip(cells, (c for row in j["top"] for c in row)):
            self.assertAlmostEqual(float(p), c["prob"], delta=1e-6)
        for r in range(lay["rows"]):  # the PNG's colours
            for c in range(lay["cols"]):
                x, y = lay["x"] + c * lay["cell_w"] + lay["cell_w"] - 2, lay["y"] + r * lay["cell_h"] + lay["cell_h"] - 2
                self.assertEqual(cells[r * lay["cols"] + c][0], hex_of(img[y, x]))
        texts = [t.text for t in root.iter(SVG + "text")]
        self.assertIn(j["top"][0][1]["token"].replace(" ", "\u00b7"), texts)
        plain = run("inspect", f"{d}/cap.h5", "--lens", "-m", m, "--term", "--color", "never", "--width", 200).stdout.decode()
        self.assertIn("post 1 ", plain)
        self.assertIn("%.0f%%" % (100 * j["top"][-1][0]["prob"]), plain)
        other = f"{d}/other.h5"
        run("model", "init", "--preset", "tiny", "--seed", 4, "-o", other, "-q")
        shell(f"tokenize -m {m} 'a b' | embed -m {m} -o {d}/short.h5")
        for args, code in ((["--lens"], 2),                          # no model
                           (["--lens", "-m", other], 1),             # another model's run
                           (["--lens", "-m", m, f"{d}/short.h5"], 1),  # another length
                           (["-m", m], 2),                            # -m without --lens
                           ([f"{d}/short.h5"], 2)):                   # two files without --lens
            p = run("inspect", f"{d}/cap.h5", *args, "--png", f"{d}/bad.png", check=False)
            self.assertEqual(p.returncode, code, (args, p.stderr))
            self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
            self.assertFalse(os.path.exists(f"{d}/bad.png"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
