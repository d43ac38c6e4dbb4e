"""Helpers for the tests that run qkv's tools as a user would."""
import os
import subprocess
import tempfile

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
