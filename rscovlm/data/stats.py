"""``rscovlm data stats``: a built dataset's manifest as tables that never cut a count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rscovlm.tables import SECTION, Align, Cell, format_table

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["manifest_tables", "render_manifest"]

#: The sub-tables after "Records per source": (title, manifest key).
COUNT_TABLES = (
    ("Kept records per split", "splits"),
    ("Kept records per task", "tasks"),
    ("Objects per class", "classes"),
    ("Rejected entries per reason", "reasons"),
)


def _counts_rows(sources: dict[str, Any], key: str) -> list[list[Cell]]:
    names = sorted({name for entry in sources.values() for name in entry.get(key, {})})
    return [[name, *(sources[s].get(key, {}).get(name, 0) for s in sources)] for name in names]


def manifest_tables(manifest: dict[str, Any], width: int | None = None) -> list[str]:
    """Every table of :func:`render_manifest`, as text (see :func:`rscovlm.tables.format_table`);
    a table without rows is left out."""
    sources: dict[str, Any] = manifest.get("sources", {})
    keys = ("read", "kept", "rejected")
    rows: list[list[Cell] | None] = [
        [name, entry["adapter"], *(entry[k] for k in keys)] for name, entry in sources.items()
    ]
    totals = manifest.get("totals", {})
    rows += [SECTION, ["total", "", *(totals.get(k, 0) for k in keys)]]
    columns = ["source", "adapter", *keys]
    align: list[Align] = ["left", "left", "right", "right", "right"]
    out = [format_table("Records per source", columns, rows, align=align, width=width)]
    for title, key in COUNT_TABLES:
        body = _counts_rows(sources, key)
        if body:
            first = "class" if key == "classes" else key.rstrip("s")
            align = ["left", *["right"] * len(sources)]
            out.append(format_table(title, [first, *sources], body, align=align, width=width))
    return out


def render_manifest(manifest: dict[str, Any], console: Console) -> None:
    """Print the per-source counts (read = kept + rejected), then splits, tasks, classes and
    rejection reasons per source."""
    version = manifest.get("code_version", {})
    console.print(
        f"{manifest.get('name', '?')}  format {manifest.get('format', '?')}  "
        f"rscovlm {version.get('rscovlm', '?')}  commit {version.get('git_commit') or '-'}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    for text in manifest_tables(manifest, console.width):
        console.print("", soft_wrap=True)
        console.print(text, markup=False, highlight=False, soft_wrap=True)
