"""Leak-free splits: pieces that share a melody are grouped, and a whole group goes to one split.

A chorale tune harmonised many times, or a reel in both CRÉ and O'Neill's, would otherwise put the
same melody (at another pitch, and every training transposition of it) into training and test.
Each piece gets transposition-invariant *fingerprints* of two kinds:

* *opening* keys (``opening_keys``): the 24-tick token sequence of ``FINGERPRINT_BARS`` bars with every
  pitch written relative to the window's first onset, so the interval and rhythm sequence (onsets,
  holds and rests) must match exactly, at any transposition. Two windows are taken, bars 1-4 and bars
  2-5, so a copy that gained or lost a pickup bar still matches.
* *melody* keys (``melody_keys``): the pitch intervals of the melody's *skeleton* in its first
  ``MELODY_BARS`` bars -- the notes at least as long as the opening's median note (so ornaments, passing
  notes and grace notes drop out), with rests ignored and repeated pitches merged (so an instrumental
  version with rests between phrases, a note split or tied differently, or a changed rhythm still
  matches) -- over ``MELODY_INTERVALS`` intervals starting at skeleton notes 0, 1 and 2 (so a pickup of
  one or two notes more or less still matches). In the Bach chorale sopranos these catch, for example,
  BWV 248.9 in its sung and instrumental versions and the settings of one hymn tune in several cantatas,
  which the opening keys miss.

Pieces sharing any fingerprint are merged (transitively, with a union-find) across all sources of the
dataset; a group's split comes from the hash of its smallest piece id, so a piece without duplicates
keeps the split of its own id. A piece with no fingerprint (fewer than ``FINGERPRINT_BARS`` bars or
fewer than ``MIN_ONSETS`` note onsets in its opening, and too few skeleton notes) is too short to
fingerprint: it is kept, split by its own id and counted as ``unfingerprinted_pieces``.
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
#: Bars of the opening whose melody skeleton gives the melody keys.
MELODY_BARS = 8
#: Intervals of the skeleton in one melody key (13 notes).
MELODY_INTERVALS = 12
#: Skeleton notes a melody key may start at: the first, and after a pickup of one or two notes.
MELODY_STARTS = (0, 1, 2)
#: Notes shorter than this many ticks (a triplet sixteenth) are never part of the skeleton.
MIN_NOTE_TICKS = 2


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


def opening_keys(measures: np.ndarray) -> list:
    """Opening fingerprints (hex strings) of a piece's measures (FULL_RANGE ids int32 [M, 24]): one per
    window of ``WINDOW_STARTS`` with enough onsets."""
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


def melody_skeleton(measures: np.ndarray) -> list:
    """MIDI pitches of the skeleton of the first ``MELODY_BARS`` bars (FULL_RANGE ids int32 [M, 24]):
    notes (an onset and its holds; a rest or any other token ends a note) at least as long as the median
    note and at least ``MIN_NOTE_TICKS``, in order, with repeated pitches merged into one."""
    flat = np.asarray(measures, np.int64).reshape(-1)[:MELODY_BARS * representation.MEASURE_TICKS]
    notes: list = []  # [pitch, ticks]
    sounding = False
    for token in flat:
        if token < FULL.num_pitches:
            notes.append([int(token), 1])
            sounding = True
        elif token == FULL.hold_id and sounding:
            notes[-1][1] += 1
        else:
            sounding = False
    if not notes:
        return []
    shortest = max(MIN_NOTE_TICKS, int(np.median([t for _, t in notes])))
    skeleton: list = []
    for pitch, ticks in notes:
        if ticks >= shortest and (not skeleton or skeleton[-1] != pitch):
            skeleton.append(pitch)
    return skeleton


def melody_keys(measures: np.ndarray) -> list:
    """Melody fingerprints (hex strings) of a piece (FULL_RANGE ids int32 [M, 24]): the
    ``MELODY_INTERVALS`` skeleton intervals from each start of ``MELODY_STARTS`` the skeleton reaches."""
    skeleton = melody_skeleton(measures)
    keys = []
    for start in MELODY_STARTS:
        notes = skeleton[start:start + MELODY_INTERVALS + 1]
        if len(notes) < MELODY_INTERVALS + 1:
            break
        intervals = np.diff(np.asarray(notes, np.int64)).astype("<i2")
        keys.append(hashlib.sha1(b"melody:" + intervals.tobytes()).hexdigest())
    return keys


def fingerprints(measures: np.ndarray) -> list:
    """Fingerprints (hex strings) of a piece, from its measures as read (FULL_RANGE ids int32 [M, 24],
    before the pitch-range filter, which depends on the key): its opening keys and its melody keys.
    Empty when the piece is too short for either."""
    return opening_keys(measures) + melody_keys(measures)


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
