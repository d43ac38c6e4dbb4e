"""Helpers for the tests that run qkv's tools as a user would."""
import os
import struct
import subprocess
import tempfile
import xml.etree.ElementTree as ET
import zlib

import h5py
import numpy as np

BIN = os.environ.get("QKV_BIN", os.path.join(os.path.dirname(__file__), "..", "..", "build", "tools"))


def tool(name):
    return os.path.join(BIN, name)


def run(name, *args, stdin=None, check=True):
    """Runs a tool; stdin may be bytes. Returns the CompletedProcess (stdout as bytes)."""
    p = subprocess.run([tool(name), *map(str, args)], input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{name} {' '.join(map(str, args))} exited {p.returncode}: "
                             f"{p.stderr.decode(errors='replace')}")
    return p


def shell(cmd, cwd=None):
    """Runs a shell pipeline with the tools on PATH; returns stdout bytes."""
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ["PATH"])
    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, cwd=cwd, timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}: {p.stderr.decode(errors='replace')}")
    return p.stdout


def write_tokens(path, model_path, tokens):
    """A tokens-stage activation file, made here until the tokenizer exists."""
    with h5py.File(model_path, "r") as m:
        model_id = m.attrs["model_id"]
    tokens = np.asarray(tokens, dtype=np.int32)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "qkv-activations"
        f.attrs["version"] = np.int64(1)
        f.attrs["model_id"] = model_id
        f.attrs["stage"] = "tokens"
        f.attrs["layer"] = np.int64(-1)
        f.attrs["history"] = "written by the test suite"
        f["tokens"] = tokens
        f["token_text"] = np.array([[f"<{t}>" for t in row] for row in tokens], dtype=object)
    return path


def dataset_values(path, skip=()):
    """Every dataset of a file as {"/name": array}, but those under a group named in skip."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not any(("/" + name).startswith(s) for s in skip):
                out["/" + name] = obj[()]
        f.visititems(visit)
    return out


FAMILIES = (("gpt2", "tiny"), ("llama", "llama-tiny"), ("neox", "pythia-tiny"))


def init_families(d, seed):
    """A tiny model of each family qkv reads: {family: path} (GPT-2, a Llama with grouped-query
    attention, GPT-NeoX with a parallel residual)."""
    models = {}
    for fam, preset in FAMILIES:
        models[fam] = f"{d}/{fam}.h5"
        run("model", "init", "--preset", preset, "--seed", str(seed), "-o", models[fam])
    return models


def read(path, name):
    with h5py.File(path, "r") as f:
        return f[name][()]


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="qkv-test-")


def read_png(path):
    """A small PNG decoder (8-bit RGB or RGBA, no interlace): returns (pixels [h, w, 3], text
    chunks)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, text = 8, b"", {}
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"tEXt":
            k, v = body.split(b"\0", 1)
            text[k.decode()] = v.decode()
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    img = np.zeros((h, stride), dtype=np.int32)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)], dtype=np.uint8).astype(np.int32)
        out = np.zeros(stride, dtype=np.int32)
        for x in range(stride):
            a = out[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 0: p = 0
            elif f == 1: p = a
            elif f == 2: p = b
            elif f == 3: p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            out[x] = (line[x] + p) & 255
        img[y] = out
        prev = out
    return img.reshape(h, w, bpp)[:, :, :3], text


SVG = "{http://www.w3.org/2000/svg}"


def read_svg(path):
    """Parses an SVG (raising on invalid XML): returns (root, metadata entries, paint_at) where
    paint_at(x, y) is the fill of the topmost rectangle over the point ("#rrggbb" or a url)."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    meta = {e.get("key"): e.text for e in root.iter("{https://qkv.dev/svg}entry")}
    rects = [(int(r.get("x", 0)), int(r.get("y", 0)), r.get("width"), r.get("height"), r.get("fill"))
             for r in root.find(SVG + "g").iter(SVG + "rect")]

    def paint_at(x, y):
        hit = [f for rx, ry, w, h, f in rects if rx <= x < rx + int(w) and ry <= y < ry + int(h)]
        return hit[-1] if hit else None
    return root, meta, paint_at


def hex_of(rgb):
    return "#%02x%02x%02x" % tuple(int(v) for v in rgb)
