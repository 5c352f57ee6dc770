"""``rscovlm data stats``: a built dataset's manifest as rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["render_manifest"]


def _counts_table(title: str, sources: dict[str, Any], key: str) -> Table | None:
    names = sorted({name for entry in sources.values() for name in entry.get(key, {})})
    if not names:
        return None
    table = Table(title=title)
    table.add_column(key.rstrip("s") if key != "classes" else "class")
    for source in sources:
        table.add_column(source, justify="right")
    for name in names:
        table.add_row(name, *(str(sources[s].get(key, {}).get(name, 0)) for s in sources))
    return table


def render_manifest(manifest: dict[str, Any], console: Console) -> None:
    """Print the per-source counts (read = kept + rejected), then splits, tasks, classes and
    rejection reasons per source."""
    sources: dict[str, Any] = manifest.get("sources", {})
    version = manifest.get("code_version", {})
    console.print(
        f"[bold]{manifest.get('name', '?')}[/bold]  format {manifest.get('format', '?')}  "
        f"rscovlm {version.get('rscovlm', '?')}  commit {version.get('git_commit') or '-'}"
    )
    table = Table(title="Records per source")
    for col in ("source", "adapter", "read", "kept", "rejected"):
        table.add_column(col, justify="left" if col in ("source", "adapter") else "right")
    for name, entry in sources.items():
        table.add_row(
            name, entry["adapter"], str(entry["read"]), str(entry["kept"]), str(entry["rejected"])
        )
    totals = manifest.get("totals", {})
    table.add_row(
        "total", "", *(str(totals.get(k, 0)) for k in ("read", "kept", "rejected")), style="bold"
    )
    console.print(table)
    for title, key in (
        ("Kept records per split", "splits"),
        ("Kept records per task", "tasks"),
        ("Objects per class", "classes"),
        ("Rejected entries per reason", "reasons"),
    ):
        sub = _counts_table(title, sources, key)
        if sub is not None:
            console.print(sub)
