"""pbt_lineage.csv: what each population-based-training round did to each member.

One row per member per round (jaxgan.sweep.pbt), in member order within a round:
  step           the round's step (after that many train steps)
  member         the member
  action         keep, exploit (a bottom member took a top member's state) or
                 replace_diverged (a diverged member did: replaced before any healthy one)
  parent         the member whose state it holds after the round (itself when kept)
  metric_name    the ranking metric (eval/fid, modes_covered, ...)
  metric         its value for the member at this step ('nan' for a diverged member)
  parent_metric  the parent's value
  <name>_before, <name>_after   each explored hyperparameter before and after the round

The file is rewritten whole (jaxgan.fileio: a reader never sees half of it) and is
replay-safe: a resumed run first drops the rounds after its checkpoint's step (they are
decided again, identically), and a round's write replaces any row of its own step. No
jax here: `python -m jaxgan.plot` reads it beside a running job.
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any, Sequence

from jaxgan import fileio

LINEAGE_CSV = "pbt_lineage.csv"
FIXED_COLUMNS = ("step", "member", "action", "parent", "metric_name", "metric",
                 "parent_metric")
KEEP, EXPLOIT, REPLACE_DIVERGED = "keep", "exploit", "replace_diverged"


def columns(names: Sequence[str]) -> list[str]:
  return list(FIXED_COLUMNS) + [f"{n}_{when}" for n in names
                                for when in ("before", "after")]


def hparam_names(header: Sequence[str]) -> list[str]:
  """The explored hyperparameters of a lineage header, in order."""
  return [c.removesuffix("_before") for c in header if c.endswith("_before")]


def read_rows(workdir: str) -> list[dict[str, str]]:
  """The rows of WORKDIR/pbt_lineage.csv ([] when there is none)."""
  path = os.path.join(workdir, LINEAGE_CSV)
  if not os.path.exists(path):
    return []
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def _write(workdir: str, header: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=list(header), lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  fileio.write_text(os.path.join(workdir, LINEAGE_CSV), buffer.getvalue())


def write_round(workdir: str, step: int, names: Sequence[str],
                rows: Sequence[dict[str, Any]]) -> None:
  """Writes one round's rows after the earlier rounds' (any row of this step or later,
  left by a run that died after writing it, is replaced)."""
  kept = [r for r in read_rows(workdir) if int(r["step"]) < step]
  _write(workdir, columns(names), kept + [dict(r) for r in rows])


def drop_rounds_after(workdir: str, step: int) -> int:
  """Rewrites the file without the rows of rounds after `step` (a resumed run's
  checkpoint step: those rounds will be decided again); returns how many were dropped."""
  path = os.path.join(workdir, LINEAGE_CSV)
  if not os.path.exists(path):
    return 0
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    header, rows = reader.fieldnames or [], list(reader)
  kept = [r for r in rows if int(r["step"]) <= step]
  if len(kept) < len(rows):
    _write(workdir, header, kept)
  return len(rows) - len(kept)
