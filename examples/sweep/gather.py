"""The study's grids in one file: /study/metric and /study/change [pair, layer, unit] from each
pair's `block --sweep`, /study/mean_change [layer, unit] (drawn by the workflow), /study/clean
[pair], the pairs' names, and one CSV row per pair, layer and unit. Run by Snakemake (rule gather);
written to a temporary name and renamed, as qkv writes its files."""
import csv
import os

import h5py
import numpy as np

pairs = snakemake.params.pairs  # noqa: F821 (Snakemake's object)
files = list(snakemake.input)  # noqa: F821
out_h5, out_csv = snakemake.output.h5, snakemake.output.csv  # noqa: F821

metric, change, clean, attrs = [], [], [], None
for path in files:
    with h5py.File(path, "r") as f:
        metric.append(f["sweep/metric"][()])
        change.append(f["sweep/change"][()])
        clean.append(float(f["sweep"].attrs["clean"]))
        attrs = {k: f["sweep"].attrs[k] for k in ("kind", "metric", "answer", "foil", "first_layer")}
metric, change = np.stack(metric), np.stack(change)

tmp = out_h5 + ".tmp"
with h5py.File(tmp, "w") as f:
    f.attrs["format"] = "qkv-activations"
    f.attrs["version"] = 1
    g = f.create_group("study")
    for k, v in attrs.items():
        g.attrs[k] = v
    unit = {"patch-heads": "head", "ablate-heads": "head", "ablate-neurons": "neuron",
            "patch-positions": "position"}.get(str(attrs["kind"]), "variant")
    for name, data, dims in (("metric", metric, ("pair", "layer", unit)),
                             ("change", change, ("pair", "layer", unit)),
                             ("mean_change", change.mean(axis=0), ("layer", unit)),
                             ("clean", np.array(clean), ("pair",))):
        d = g.create_dataset(name, data=data.astype(np.float32))
        for i, label in enumerate(dims):
            d.dims[i].label = label
    g.create_dataset("pairs", data=np.array(pairs, dtype=h5py.string_dtype()))
os.replace(tmp, out_h5)

tmp = out_csv + ".tmp"
with open(tmp, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["pair", "layer", "unit", "metric", "change"])
    first = int(attrs["first_layer"])
    for p, name in enumerate(pairs):
        for layer in range(metric.shape[1]):
            for u in range(metric.shape[2]):
                w.writerow([name, first + layer, u, repr(float(metric[p, layer, u])),
                            repr(float(change[p, layer, u]))])
os.replace(tmp, out_csv)
