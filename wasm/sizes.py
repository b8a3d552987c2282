#!/usr/bin/env python3
"""Code bytes of a wasm module with a name section, grouped by Swift type (or C function), largest first.

    python3 wasm/sizes.py wasm/out/kedge.named.wasm [N]    (wasm/build.sh --sizes makes the named module)
"""
import collections
import re
import subprocess
import sys

path = sys.argv[1]
top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
dis = subprocess.run(["wasm-objdump", "-d", path], capture_output=True, text=True, check=True).stdout
sizes, cur, start = {}, None, 0
for line in dis.splitlines():
    m = re.match(r"^([0-9a-f]+) func\[\d+\] <(.*)>:", line)
    if m:
        off = int(m.group(1), 16)
        if cur:
            sizes[cur] = sizes.get(cur, 0) + off - start
        cur, start = m.group(2), off
names = list(sizes)
demangled = subprocess.run(["swift", "demangle", "--simplified"], input="\n".join(names), capture_output=True,
                           text=True).stdout.splitlines()
groups, members = collections.Counter(), collections.Counter()
for n, d in zip(names, demangled):
    d = re.sub(r"^(specialized |merged |outlined [a-z ]+of |closure #\d+ in |implicit closure #\d+ in |"
               r"one-time initialization function for |static |\(extension in \w+\):)+", "", d)
    key = re.split(r"[.(<: ]", d, 1)[0] or d
    groups[key] += sizes[n]
    members[key] += 1
total = sum(sizes.values())
print(f"{total} code bytes in {len(sizes)} functions; largest groups:")
for k, v in groups.most_common(top):
    print(f"  {v:8d} {100 * v / total:5.1f}%  {k} ({members[k]} functions)")
