"""A plain-text summary table of a dataset build's statistics (for the data CLI and benchmarks)."""

from __future__ import annotations

from musicvae_xai.datasets.config import SPLITS
from musicvae_xai.datasets.sources import SKIP_UNITS


def summary_table(stats: dict, cache_path: str = "", reused: bool = False) -> str:
    """Multi-line table: files, pieces, measures per split before/after augmentation, skip reasons."""
    lines = [f"dataset {stats.get('dataset', '?')}"
             + (f"  ({'reused' if reused else 'built'} cache {cache_path})" if cache_path else "")]
    pps = stats.get("pieces_per_split", {})
    rows = [("files seen", stats["files_total"]), ("files parsed", stats["files_parsed"]),
            ("pieces read", stats.get("pieces_total", "")),
            ("pieces kept", f"{stats['pieces']}  ("
             + " / ".join(f"{s} {pps.get(s, 0)}" for s in SPLITS) + ")")]
    if "duplicate_groups" in stats:
        rows += [("duplicate groups", f"{stats['duplicate_groups']}  ({stats['duplicate_pieces']} pieces, "
                  f"{stats.get('cross_source_groups', 0)} across sources; one split per group)"),
                 ("unfingerprinted", f"{stats.get('unfingerprinted_pieces', 0)}  (too short: split by own id)")]
    lines += [f"  {k:<22}{v}" for k, v in rows]
    lines.append("")
    lines.append(f"  {'measures':<22}" + "".join(f"{s:>12}" for s in SPLITS))
    lines.append(f"  {'before augmentation':<22}" + "".join(f"{stats['measures'][s]:>12}" for s in SPLITS))
    aug = stats.get("measures_augmented", stats["measures"])
    lines.append(f"  {'after augmentation':<22}" + "".join(f"{aug[s]:>12}" for s in SPLITS))
    lines.append("")
    lines.append(f"  {'skipped (reason)':<22}{'count':>12}  unit")
    skipped = stats.get("skipped", {})
    units = stats.get("skipped_units", {})
    if not skipped:
        lines.append(f"  {'(none)':<22}")
    for reason, count in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(f"  {reason:<22}{count:>12}  {units.get(reason, SKIP_UNITS.get(reason, 'bars'))}")
    per_source = stats.get("sources", {})
    if len(per_source) > 1:
        lines.append("")
        lines.append(f"  {'source':<26}{'files':>8}{'parsed':>8}{'pieces':>8}{'measures':>10}")
        for name, s in per_source.items():
            lines.append(f"  {name:<26}{s['files_total']:>8}{s['files_parsed']:>8}{s['pieces']:>8}{s['measures']:>10}")
    if "build_seconds" in stats:
        lines.append("")
        lines.append(f"  build time {stats['build_seconds']:.1f} s")
    return "\n".join(lines)
