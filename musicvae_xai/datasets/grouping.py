"""Leak-free splits: pieces that share a melody are grouped, and a whole group goes to one split.

A chorale tune harmonised many times, or a reel in both CRÉ and O'Neill's, would otherwise put the
same melody (at another pitch, and every training transposition of it) into training and test.
Each piece gets transposition-invariant *fingerprints* of its opening: the 24-tick token sequence of
``FINGERPRINT_BARS`` bars with every pitch written relative to the window's first onset, so the
interval and rhythm sequence (onsets, holds and rests) must match exactly, at any transposition.
Two windows are taken, bars 1-4 and bars 2-5, so a copy that gained or lost a pickup bar still
matches. Pieces sharing any fingerprint are merged (transitively, with a union-find) across all
sources of the dataset; a group's split comes from the hash of its smallest piece id, so a piece
without duplicates keeps the split of its own id. A piece with fewer than ``FINGERPRINT_BARS`` bars
or fewer than ``MIN_ONSETS`` note onsets in its opening is too short to fingerprint: it is kept,
split by its own id and counted as ``unfingerprinted_pieces``.
"""

from __future__ import annotations

import hashlib
from typing import Optional

import numpy as np

from musicvae_xai import representation

FULL = representation.FULL_RANGE
#: Bars in one fingerprint window.
FINGERPRINT_BARS = 4
#: Window starts (in bars) whose fingerprints are taken: the opening, and the opening after a pickup.
WINDOW_STARTS = (0, 1)
#: Fewest note onsets a window needs to identify a melody.
MIN_ONSETS = 8


def window_key(measures: np.ndarray) -> Optional[str]:
    """Fingerprint of one window (FULL_RANGE ids int32 [FINGERPRINT_BARS, 24]), or None when it has
    fewer than MIN_ONSETS onsets. Pitches become offsets from the first onset (transposition
    invariant); rest and hold tokens keep their ids, so the rhythm is part of the key."""
    flat = np.asarray(measures, np.int64).reshape(-1)
    is_pitch = flat < FULL.num_pitches
    if int(is_pitch.sum()) < MIN_ONSETS:
        return None
    first = flat[is_pitch][0]
    rel = np.where(is_pitch, flat - first, 1000 + flat)  # offsets in -127..127; specials 1128+
    return hashlib.sha1(rel.astype("<i2").tobytes()).hexdigest()


def fingerprints(measures: np.ndarray) -> list:
    """Fingerprints (hex strings) of a piece's opening windows, from its measures as read
    (FULL_RANGE ids int32 [M, 24], before the pitch-range filter, which depends on the key). Empty
    when the piece is too short."""
    measures = np.asarray(measures).reshape(-1, representation.MEASURE_TICKS)
    keys = []
    for start in WINDOW_STARTS:
        window = measures[start:start + FINGERPRINT_BARS]
        if len(window) < FINGERPRINT_BARS:
            break
        key = window_key(window)
        if key is not None:
            keys.append(key)
    return keys


def group_pieces(piece_ids: list, keys: list) -> list:
    """Group id of every piece: the smallest piece id among all pieces that share a fingerprint with
    it, directly or through others (union-find). piece_ids: [P] str; keys: [P] lists of fingerprints
    (empty for a piece too short to fingerprint, which stays alone)."""
    parent = list(range(len(piece_ids)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict = {}
    for i, piece_keys in enumerate(keys):
        for key in piece_keys:
            j = owner.setdefault(key, i)
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    smallest: dict = {}
    for i, pid in enumerate(piece_ids):
        root = find(i)
        if root not in smallest or pid < smallest[root]:
            smallest[root] = pid
    return [smallest[find(i)] for i in range(len(piece_ids))]


def duplicate_stats(groups: list, sources: list, fingerprinted: list) -> dict:
    """duplicate_groups (groups of two or more pieces), duplicate_pieces (pieces in such groups),
    cross_source_groups (such groups spanning two or more sources) and unfingerprinted_pieces."""
    members: dict = {}
    for g, s in zip(groups, sources, strict=False):
        members.setdefault(g, []).append(s)
    dup = [m for m in members.values() if len(m) > 1]
    return {"duplicate_groups": len(dup), "duplicate_pieces": sum(len(m) for m in dup),
            "cross_source_groups": sum(1 for m in dup if len(set(m)) > 1),
            "unfingerprinted_pieces": sum(1 for f in fingerprinted if not f)}
