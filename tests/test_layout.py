"""The package's layout holds (WORKSPACE.md, "Layout"): imports point down only, programs
(cli/, benchmark/) -> runtime/ -> library, and no module imports one that imports it back.

Read from the source with `ast`: every import statement, at module level or inside a
function (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
import os

import toolkit

PACKAGE = os.path.join(toolkit.REPO, "jaxgan")
# Layers, top down; a module may import its own layer or any layer below.
LAYERS = (("jaxgan.cli", "jaxgan.benchmark", "jaxgan.main", "jaxgan.evaluate",
           "jaxgan.classifier", "jaxgan.bench", "jaxgan.figure1", "jaxgan.plot",
           "jaxgan.sample"),
          ("jaxgan.runtime",))


def module_name(path: str) -> str:
  rel = os.path.relpath(path, toolkit.REPO)[:-len(".py")].replace(os.sep, ".")
  return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def modules() -> dict[str, str]:
  found = {}
  for root, _, files in os.walk(PACKAGE):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(root, name)
        found[module_name(path)] = path
  return found


def imports(path: str, name: str, known: set[str]) -> set[str]:
  """The jaxgan modules `path` (module `name`) imports, wherever the statement is."""
  package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
  out = set()
  for node in ast.walk(ast.parse(open(path).read(), path)):
    if isinstance(node, ast.Import):
      targets = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        parts = package.split(".")
        base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
      # `from a import b` depends on a.b when b is a module, else on a's own names.
      targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                 for a in node.names]
    else:
      continue
    out |= {t for t in targets if t in known and t != name}
  return out


def graph() -> dict[str, set[str]]:
  found = modules()
  return {name: imports(path, name, set(found)) for name, path in found.items()}


def layer(name: str) -> int:
  for depth, prefixes in enumerate(LAYERS):
    if any(name == p or name.startswith(p + ".") for p in prefixes):
      return depth
  return len(LAYERS)  # The library.


def test_imports_point_down_only():
  upward = sorted((a, b) for a, targets in graph().items() for b in targets
                  if layer(b) < layer(a))
  assert not upward, f"modules importing a layer above their own: {upward}"


def test_no_module_imports_one_that_imports_it_back():
  edges = graph()
  cycles = []
  for start in edges:  # Depth-first search for a path back to `start`.
    stack, seen = [(start, [start])], set()
    while stack:
      node, path = stack.pop()
      for nxt in edges[node]:
        if nxt == start:
          cycles.append(path + [start])
        elif nxt not in seen:
          seen.add(nxt)
          stack.append((nxt, path + [nxt]))
  assert not cycles, f"import cycles: {sorted(cycles)[:5]}"
