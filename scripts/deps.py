#!/usr/bin/env python3
"""scripts/deps.py - which of the library's source files call into which others.

The library is meant to be layered: a file may use the files below it, never one that uses it
back (no cycle between the files of src/, and cuda/ on top of src/). This reads the object files
of a build with nm, matches every symbol a file uses but does not define with the file that
defines it, and prints the picture: one line per file with the files it uses, then every cycle
(a strongly connected group of files), if any. Calls to static inline functions of headers are
not calls between files and do not show.

Usage: scripts/deps.py <build dir> | <object>... [--nm <nm>] [--fail-on-cycles] [--dot]
  <build dir>       a built nalloc build tree (its CMakeFiles/nalloc.dir objects), or
  <object>...       the library's object files (tests/CMakeLists.txt passes $<TARGET_OBJECTS>)
  --nm <nm>         the nm to run (default: nm on PATH)
  --fail-on-cycles  exit 1 when any cycle exists (the ctest "file_layers" runs it so)
  --dot             print a Graphviz digraph instead of the text picture
"""
import os
import subprocess
import sys


def source_of(obj):
    """The source file an object of the nalloc target was compiled from: src/arena.c for
    .../CMakeFiles/nalloc.dir/src/arena.c.o."""
    path = obj.replace(os.sep, "/")
    marker = "/nalloc.dir/"
    name = path[path.index(marker) + len(marker):] if marker in path else os.path.basename(path)
    return name[:-2] if name.endswith(".o") else name


def objects(paths):
    found = {}
    for path in paths:
        if os.path.isdir(path):
            root = os.path.join(path, "CMakeFiles", "nalloc.dir")
            for dirpath, _, files in os.walk(root):
                for f in files:
                    if f.endswith(".o"):
                        obj = os.path.join(dirpath, f)
                        found[source_of(obj)] = obj
        else:
            found[source_of(path)] = path
    if not found:
        sys.exit(f"deps.py: no object files in {' '.join(paths)}: build the library first")
    return found


def symbols(nm, obj):
    """(defined, used): global symbols the object defines, and those it needs from elsewhere."""
    out = subprocess.run([nm, "-P", obj], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            used.add(name)
        elif kind.isupper() and kind not in "NU":
            defined.add(name)
    return defined, used


def strongly_connected(graph):
    """Tarjan's algorithm: the groups of nodes that reach each other, largest first."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(groups, key=len, reverse=True)


def main(argv):
    args, nm, rest = [], "nm", argv[1:]
    while rest:
        a = rest.pop(0)
        if a == "--nm" and rest:
            nm = rest.pop(0)
        elif not a.startswith("--"):
            args.extend(p for p in a.split(";") if p)  # a CMake list arrives as one argument
    if not args:
        sys.exit(__doc__)
    objs = objects(args)
    table = {src: symbols(nm, obj) for src, obj in objs.items()}
    owner = {}
    for src, (defined, _) in table.items():
        for name in defined:
            owner[name] = src
    graph = {src: {} for src in table}
    for src, (_, used) in table.items():
        for name in used:
            dst = owner.get(name)
            if dst is not None and dst != src:
                graph[src].setdefault(dst, []).append(name)
    if "--dot" in argv:
        print("digraph nalloc {")
        for src in sorted(graph):
            for dst in sorted(graph[src]):
                print(f'  "{src}" -> "{dst}";')
        print("}")
    else:
        width = max(len(s) for s in graph)
        for src in sorted(graph):
            uses = ", ".join(sorted(graph[src])) or "-"
            print(f"{src:<{width}}  uses  {uses}")
    groups = strongly_connected({s: list(d) for s, d in graph.items()})
    for g in groups:
        print(f"cycle: {' <-> '.join(g)}")
        for src in g:
            for dst in sorted(graph[src]):
                if dst in g:
                    print(f"    {src} -> {dst}: {', '.join(sorted(graph[src][dst]))}")
    if not groups:
        print("no cycles")
    return 1 if groups and "--fail-on-cycles" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
