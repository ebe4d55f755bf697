#!/usr/bin/env python3
"""Checks that calls between eventlog's files run one way.

Reads the symbols each object file defines and uses (nm) and fails when a
file calls into a folder above its own, or when files call each other in a
circle.  The folders, bottom first; a file at src/ itself is the top.

    python3 test/layers.py [SRC_DIR]     (after the build)
"""
import collections
import glob
import os
import subprocess
import sys

LAYERS = ['util', 'storage', 'log', 'groups', 'capture', 'mirror', 'worker', 'kafka', '']
# compat/ adapts the storage layer's callbacks to each PostgreSQL major: it
# ranks with storage.
SAME_AS = {'compat': 'storage'}


def folder(obj, src):
    rel = os.path.dirname(os.path.relpath(obj, src))
    return SAME_AS.get(rel, rel)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else 'src'
    objs = sorted(glob.glob(os.path.join(src, '*.o')) + glob.glob(os.path.join(src, '*', '*.o')))
    if not objs:
        sys.exit('layers.py: no object files under %s: build first' % src)
    defined, used = {}, {}
    for obj in objs:
        out = subprocess.run(['nm', obj], capture_output=True, text=True, check=True).stdout
        used[obj] = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in 'TDBRC':
                defined[parts[2]] = obj
            elif len(parts) == 2 and parts[0] == 'U':
                used[obj].add(parts[1])
    errors = []
    calls = collections.defaultdict(set)
    for obj in objs:
        if folder(obj, src) not in LAYERS:
            errors.append('%s: folder not in the list of layers' % obj)
            continue
        for sym in sorted(used[obj]):
            target = defined.get(sym)
            if target is None or target == obj:
                continue
            calls[obj].add(target)
            a, b = LAYERS.index(folder(obj, src)), LAYERS.index(folder(target, src))
            if b > a:
                errors.append('%s calls up into %s (%s)' % (obj, target, sym))

    # Circles of files: strongly connected components of the call graph.
    index, low, stack, on_stack, counter = {}, {}, [], set(), [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in calls[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                errors.append('files call each other in a circle: %s' % ', '.join(sorted(comp)))

    sys.setrecursionlimit(10000)
    for obj in objs:
        if obj not in index:
            visit(obj)
    for e in errors:
        print(e)
    if errors:
        sys.exit(1)
    print('layers: %d files, every call goes down or stays in its folder, no circles' % len(objs))


if __name__ == '__main__':
    main()
