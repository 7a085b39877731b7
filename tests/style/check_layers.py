#!/usr/bin/env python3
"""The house rules of docs/ARCHITECTURE.md, checked on the source and on the
built objects:

  1. Includes go down: a file of a layer includes no internal header of a
     higher layer (libmp's layers, then broker/worker, then client).
  2. Calls go down, and no two files call each other round a circle: the
     cross-object calls come from `nm` on the library's objects, so a
     function declared in one file and called from another is seen even
     where no header says so.
  3. No source file over 800 lines, no function over 120 lines.

usage: check_layers.py SOURCE_DIR BUILD_DIR
Exit 0 when every rule holds; otherwise one line per breach and exit 1.
"""
import glob
import os
import re
import subprocess
import sys

# Bottom up. A file may use its own layer and those before it.
LAYERS = [
    "libmp/base", "libmp/sync", "libmp/codec", "libmp/shared", "libmp/process",
    "libmp/manager", "libmp/pool", "broker", "worker", "client",
]
# Parallel layers that must not use each other (the Manager and the Pool
# share nothing; the broker and the worker meet only in the client).
APART = [("libmp/manager", "libmp/pool"), ("libmp/manager", "broker"),
         ("libmp/manager", "worker"), ("broker", "worker")]
MAX_FILE, MAX_FUNC = 800, 120


def layer_of(path):
    best = None
    for i, layer in enumerate(LAYERS):
        if path == layer or path.startswith(layer + "/"):
            best = i
    return best


def allowed(frm, to):
    a, b = LAYERS[frm], LAYERS[to]
    if (a, b) in APART or (b, a) in APART:
        return False
    return to <= frm


def sources(top):
    out = []
    for d in ("libmp", "broker", "worker", "client"):
        for p in glob.glob(os.path.join(top, d, "**", "*.[ch]"), recursive=True):
            rel = os.path.relpath(p, top)
            if not rel.startswith("libmp/include/"):
                out.append(rel)
    return sorted(out)


def resolve(top, rel, inc):
    """The file an #include "inc" of rel means, as the build finds it."""
    for base in (os.path.dirname(rel), "libmp", "broker", "worker", "client"):
        cand = os.path.normpath(os.path.join(base, inc))
        if os.path.exists(os.path.join(top, cand)):
            return cand
    return None


def check_includes(top, files, errors):
    for rel in files:
        me = layer_of(rel)
        for n, line in enumerate(open(os.path.join(top, rel)), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            target = resolve(top, rel, m.group(1))
            if target is None or target.startswith("libmp/include/"):
                continue
            to = layer_of(target)
            if to is not None and me is not None and not allowed(me, to):
                errors.append(f"{rel}:{n}: includes {target} "
                              f"({LAYERS[me]} may not use {LAYERS[to]})")


def objects(build):
    """The library's objects, and the programs' own (mp-client's files)."""
    out = {}
    objdir = os.path.join(build, "libmp", "CMakeFiles", "mp_objects.dir")
    for o in glob.glob(os.path.join(objdir, "**", "*.c.o"), recursive=True):
        rel = os.path.relpath(o, objdir)[: -len(".c.o")].replace("__/", "")
        if not rel.startswith(("broker/", "worker/", "client/")):
            rel = "libmp/" + rel
        out[rel] = o
    for prog in ("broker", "worker", "client"):
        for o in glob.glob(os.path.join(build, prog, "CMakeFiles", "*.dir", "*.c.o")):
            out[prog + "/" + os.path.basename(o)[: -len(".c.o")]] = o
    return out


def check_calls(top, build, errors):
    objs = objects(build)
    if not objs:
        errors.append(f"no objects under {build}: build first")
        return
    defs, uses = {}, {}
    for rel, o in objs.items():
        if not os.path.exists(os.path.join(top, rel + ".c")):
            continue  # a stale object of a file that is gone
        text = subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout
        d, u = set(), set()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in "TDBRV":
                d.add(parts[2])
            elif len(parts) == 2 and parts[0] == "U":
                u.add(parts[1])
        defs[rel], uses[rel] = d, u
    owner = {s: rel for rel, d in defs.items() for s in d}
    graph = {rel: set() for rel in defs}
    for rel, u in uses.items():
        for s in u:
            to = owner.get(s)
            if to and to != rel:
                graph[rel].add(to)
                a, b = layer_of(rel), layer_of(to)
                if a is not None and b is not None and not allowed(a, b):
                    errors.append(f"{rel}.c calls {s} of {to}.c "
                                  f"({LAYERS[a]} may not use {LAYERS[b]})")
    # circles: Tarjan's strongly connected components
    index, low, stack, on, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    for comp in comps:
        errors.append("calls go round a circle: " + " ".join(c + ".c" for c in comp))


def check_sizes(top, files, errors):
    for rel in files:
        lines = open(os.path.join(top, rel)).read().split("\n")
        if len(lines) - 1 > MAX_FILE:
            errors.append(f"{rel}: {len(lines) - 1} lines (at most {MAX_FILE})")
        start = None
        for i, line in enumerate(lines):
            if line.startswith("{"):
                start = i
            elif line.startswith("}") and start is not None:
                if i - start + 1 > MAX_FUNC:
                    errors.append(f"{rel}:{start + 1}: a function of {i - start + 1} lines "
                                  f"(at most {MAX_FUNC})")
                start = None


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().split("\n\n")[-2], file=sys.stderr)
        return 2
    top, build = sys.argv[1], sys.argv[2]
    files = sources(top)
    errors = []
    check_includes(top, files, errors)
    check_calls(top, build, errors)
    check_sizes(top, files, errors)
    for e in errors:
        print(e)
    print(f"{len(files)} files, {len(errors)} breaches of the house rules")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
