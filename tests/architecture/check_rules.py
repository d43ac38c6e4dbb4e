#!/usr/bin/python3
"""The rules of libcore's layout (ARCHITECTURE.md), checked on the sources' #include lines:

1. <hdf5.h> is included by libcore/qkv/files/h5_api.hpp alone (the HDF5 file code includes that).
2. The core knows no files: base/, tensor/, model/, tokenizer/ and train/ include nothing from
   files/ or commands/ (CMake also builds them without HDF5's include path).
3. The tokenizer depends on no tensor code: tokenizer/ includes only base/ and itself.
4. Each part includes only the parts below it: base < tensor < model, tokenizer < train <
   files < view (and tools/commands above them all).
5. The library never prints and never reads options: no std::cout, std::cerr, printf, isatty
   or CLI11 in libcore/ (but h5file.cpp's isatty, which keeps HDF5 off a terminal).
6. Every attribute name that the readers look up as a literal (has_attr, attr_str, attr_int,
   attr_double, get_attr) is among the names the check of untrusted files looks up
   (walked_attribute_names in libcore/qkv/files/h5_walk.cpp).
Prints each broken rule as FILE:LINE: and exits 1; exits 0 when all hold."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "libcore", "qkv")
ALLOWED = {  # what each folder may include besides itself
    "base": set(),
    "tensor": {"base"},
    "model": {"base", "tensor"},
    "tokenizer": {"base"},
    "train": {"base", "tensor", "model"},
    "files": {"base", "tensor", "model", "tokenizer", "train"},
    "view": {"base", "tensor", "model", "tokenizer", "train", "files"},
}
PRINTS = re.compile(r"std::cout|std::cerr|(?<![sn])printf\(|isatty\(|CLI::|<CLI/")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


ATTR_READ = re.compile(r'(?:has_attr|attr_str|attr_int|attr_double|get_attr)\([^;]*?"([A-Za-z_0-9]+)"')


def unwalked_attribute_names(root):
    """Rule 6: attribute names read by libcore/ and tools/ that the HDF5 check does not walk."""
    with open(os.path.join(root, "files", "h5_walk.cpp"), encoding="utf-8") as f:
        src = f.read()
    listed = src[src.index("walked_attribute_names()"):]
    walked = set(re.findall(r'"([A-Za-z_0-9]+)"', listed[:listed.index("return names;")]))
    broken = []
    for base in (root, os.path.join(root, "..", "..", "tools")):
        for dirpath, _, files in os.walk(base):
            for name in sorted(files):
                if not name.endswith((".cpp", ".hpp")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8") as f:
                    for n, line in enumerate(f, 1):
                        for attr in ATTR_READ.findall(line):
                            if attr not in walked:
                                broken.append(f"{os.path.relpath(path, os.path.join(root, '..', '..'))}:{n}: "
                                              f"reads attribute '{attr}', which the HDF5 check "
                                              "does not look up (walked_attribute_names)")
    return broken


def main(root):
    broken = []
    for folder in sorted(os.listdir(root)):
        path = os.path.join(root, folder)
        if not os.path.isdir(path):
            continue  # version.hpp.in
        if folder not in ALLOWED:
            broken.append(f"{path}: a folder the rules do not know (add it to {__file__})")
            continue
        for name in sorted(os.listdir(path)):
            src = os.path.join(path, name)
            with open(src, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    p = PRINTS.search(line)
                    if p and not (p.group(0) == "isatty(" and f"{folder}/{name}" == "files/h5file.cpp"):
                        broken.append(f"libcore/qkv/{folder}/{name}:{n}: {p.group(0)} (the library never "
                                      "prints or reads options; that is tools/)")
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    inc = m.group(1)
                    where = f"libcore/qkv/{folder}/{name}:{n}"
                    if inc == "hdf5.h" and f"{folder}/{name}" != "files/h5_api.hpp":
                        broken.append(f"{where}: includes <hdf5.h> (only files/h5_api.hpp may)")
                    # qkv's own headers: "qkv/PART/name.hpp"
                    part = inc.split("/")[1] if inc.startswith("qkv/") and inc.count("/") == 2 else None
                    if part in ALLOWED and part != folder and part not in ALLOWED[folder]:
                        broken.append(f"{where}: {folder}/ includes {inc} ({folder}/ may use "
                                      f"{', '.join(sorted(ALLOWED[folder])) or 'nothing else'})")
    broken += unwalked_attribute_names(root)
    for b in broken:
        print(b)
    print(f"architecture rules: {len(broken)} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ROOT))
