"""Tests for musicvae_xai.datasets: registry, filters, splits, augmentation, cache, tf.data."""

import json
import pathlib
import random
import shutil

import numpy as np
import pytest

from musicvae_xai import attributes, datasets
from musicvae_xai.datasets import DatasetConfig, split_of
from musicvae_xai.representation import Vocabulary

NOTES = "CDEFGABcdefgab"


def tune(number: int, metre: str = "4/4", bars: int = 4, body: str = "", seed: int = 0) -> str:
    """A small ABC tune: ``bars`` bars of four random quarter notes (or ``body`` if given)."""
    rng = random.Random(seed * 1000 + number)
    per_bar = {"4/4": 4, "3/4": 3, "2/2": 4, "C": 4}[metre]
    if not body:
        body = "|".join(" ".join(rng.choice(NOTES) for _ in range(per_bar)) for _ in range(bars)) + "|]"
    return f"X:{number}\nT:Tune {number}\nM:{metre}\nL:1/4\nK:C\n{body}\n\n"


def write_abc_root(root: pathlib.Path, n_plain: int = 30, order=None) -> pathlib.Path:
    """A folder of ABC tunebooks for the 'embedded' dataset with one tune of each kind to filter."""
    root.mkdir(parents=True, exist_ok=True)
    books = {
        "plain.abc": "".join(tune(i) for i in range(1, n_plain + 1)),
        "special.abc": (tune(101, "3/4", bars=3)                          # 3 bars not 4/4
                        + tune(102, "2/2", bars=2)                        # 2 bars only with allow_cut_time
                        + tune(103, body="c d e f|c''' d e f|g4|]")       # 1 bar out of range
                        + tune(104, body="c/8d/8e3/4 d e f|g4|]")         # 1 bar off the grid (32nds)
                        + "X:105\nT:broken\nM:4/4\nL:1/8\nK:C\n[[[[|||:::\n\n"),  # unparseable tune
        "empty.abc": "",
        "binary.abc": None,
    }
    names = order or sorted(books)
    for name in names:
        if books[name] is None:
            (root / name).write_bytes(b"\x00\x01\x02garbage\xff")
        else:
            (root / name).write_text(books[name])
    return root


@pytest.fixture(scope="module")
def abc_root(tmp_path_factory):
    return write_abc_root(tmp_path_factory.mktemp("abc_root"))


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    return datasets.build(DatasetConfig(name="embedded"), tmp_path_factory.mktemp("cache"), progress=False, workers=2)


# ---------------------------------------------------------------- registry and config


def test_names():
    assert datasets.names() == ["classical", "embedded", "irish", "pop", "turkish"]


def test_bad_name_and_roots(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset 'jazz'"):
        datasets.build(DatasetConfig(name="jazz", data_root=str(tmp_path)), tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.build(DatasetConfig(name="irish", data_root=str(tmp_path / "nowhere")), tmp_path / "c")
    with pytest.raises(ValueError, match="needs a data_root"):
        datasets.build(DatasetConfig(name="pop"), tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="holds none of the folders"):
        datasets.build(DatasetConfig(name="irish", data_root=str(tmp_path)), tmp_path / "c")
    with pytest.raises(ValueError):
        datasets.build(DatasetConfig(name="embedded", min_pitch=90, max_pitch=80), tmp_path / "c")


def test_config_dict_round_trip():
    cfg = DatasetConfig(name="irish", data_root="/data", allow_cut_time=True, split=[0.7, 0.2, 0.1])
    d = json.loads(json.dumps(cfg.to_dict()))
    assert DatasetConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="unknown dataset config key"):
        DatasetConfig.from_dict({"name": "irish", "colour": "red"})
    with pytest.raises(ValueError):
        DatasetConfig(split=(0.5, 0.2, 0.2)).validate()


# ---------------------------------------------------------------- filters


def test_filters_and_skip_counts(abc_root, tmp_path):
    built = datasets.build(DatasetConfig(name="embedded", data_root=str(abc_root), transpose=False),
                           tmp_path, progress=False, workers=1)
    s = built.stats
    assert s["files_total"] == 4 and s["files_parsed"] == 2
    assert s["skipped"]["empty_file"] == 1
    assert s["skipped"]["unparseable"] == 2  # the binary file and the broken tune
    assert s["skipped"]["not_4_4"] == 3 + 2
    assert s["skipped"]["out_of_pitch_range"] == 1 and s["skipped"]["off_grid"] == 1
    assert s["skipped_units"]["not_4_4"] == "bars" and s["skipped_units"]["empty_file"] == "files"
    # 30 plain tunes x 4 bars, plus the kept bars of the out-of-range (2) and off-grid (1) tunes
    assert sum(s["measures"].values()) == 30 * 4 + 2 + 1
    assert s["pieces"] == 32 and s["pieces_total"] == 34
    cut = datasets.build(DatasetConfig(name="embedded", data_root=str(abc_root), transpose=False,
                                       allow_cut_time=True), tmp_path, progress=False, workers=1)
    assert cut.stats["skipped"]["not_4_4"] == 3
    assert sum(cut.stats["measures"].values()) == 30 * 4 + 2 + 1 + 2


def _midi_bytes(notes, ticks_per_beat=480, name="MELODY"):
    """A type-1 MIDI file with a tempo track and one note track; notes = (pitch, start, end) in beats."""
    mido = pytest.importorskip("mido")
    import io

    mf = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    events = []
    for pitch, start, end in notes:
        events.append((round(start * ticks_per_beat), 1, pitch))
        events.append((round(end * ticks_per_beat), 0, pitch))
    now = 0
    for tick, on, pitch in sorted(events):
        track.append(mido.Message("note_on" if on else "note_off", note=pitch, velocity=80 if on else 0,
                                  time=tick - now))
        now = tick
    mf.tracks.extend([meta, track])
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def test_pop_polyphonic_bars_and_metre_from_beats(tmp_path):
    song = tmp_path / "pop_pop909" / "POP909" / "001"
    song.mkdir(parents=True)
    # 120 bpm: one beat = 0.5 s; the beat grid starts at 0.0 and every 4th beat is a 4/4 downbeat
    notes = [(60 + k % 12, k * 1.0, k * 1.0 + 1.5) for k in range(16)] + [(72, 5.0, 6.0)]  # chord in bar 2
    (song / "001.mid").write_bytes(_midi_bytes(notes))
    rows = [f"{0.5 * b:.3f} {1.0 if b % 2 == 0 else 0.0} {1.0 if b % 4 == 0 else 0.0}" for b in range(17)]
    (song / "beat_midi.txt").write_text("\n".join(rows) + "\n")
    built = datasets.build(DatasetConfig(name="pop", data_root=str(tmp_path), transpose=False), tmp_path / "c",
                           progress=False, workers=1)
    assert built.stats["skipped"].get("polyphonic") == 1
    assert sum(built.stats["measures"].values()) == 3  # 4 bars, 1 polyphonic
    split = next(s for s in datasets.SPLITS if built.stats["measures"][s])
    first = built.vocabulary.decode(built.tokens(split)[0])
    assert first[0] == 60 and first[1:6] == ["hold"] * 5 and first[6] == 61  # legato cut at next onset


# ---------------------------------------------------------------- splits


def test_split_of_is_deterministic_and_proportional():
    ids = [f"src/file{i}.mid" for i in range(5000)]
    first = {i: split_of(i, (0.8, 0.1, 0.1)) for i in ids}
    shuffled = list(ids)
    random.Random(1).shuffle(shuffled)
    assert all(split_of(i, (0.8, 0.1, 0.1)) == first[i] for i in shuffled)
    counts = {s: sum(v == s for v in first.values()) / len(ids) for s in datasets.SPLITS}
    assert abs(counts["train"] - 0.8) < 0.03 and abs(counts["validation"] - 0.1) < 0.02
    assert split_of("x", (0.8, 0.1, 0.1), seed=0) in datasets.SPLITS


def test_split_independent_of_location_and_file_order(tmp_path):
    a = write_abc_root(tmp_path / "machine_a" / "data")
    b = write_abc_root(tmp_path / "elsewhere" / "copy", order=["special.abc", "binary.abc", "plain.abc", "empty.abc"])
    builds = [datasets.build(DatasetConfig(name="embedded", data_root=str(root)), tmp_path / "cache",
                             progress=False, workers=1) for root in (a, b)]
    assert builds[0].path != builds[1].path
    assert builds[0].pieces() == builds[1].pieces()
    for split in datasets.SPLITS:
        np.testing.assert_array_equal(builds[0].tokens(split), builds[1].tokens(split))
    splits = {p["split"] for p in builds[0].pieces()}
    assert {"train"} <= splits and len(splits) >= 2


# ---------------------------------------------------------------- embedded set, augmentation


def test_embedded_builds(embedded):
    s = embedded.stats
    assert s["files_total"] == 4 and s["files_parsed"] == 4
    assert s["pieces"] >= 200 and s["measures"]["train"] >= 2000
    assert s["measures_augmented"]["train"] >= 5 * s["measures"]["train"]
    assert embedded.vocabulary == Vocabulary(55, 84)
    for split in datasets.SPLITS:
        t = embedded.tokens(split)
        assert t.dtype == np.int32 and t.ndim == 2 and t.shape[1] == 24
        assert len(t) == s["measures_augmented"][split] and t.min() >= 0 and t.max() < embedded.vocabulary.size


def test_augmentation_only_on_train_and_pieces_never_cross_splits(embedded):
    s = embedded.stats
    pieces = embedded.pieces()
    for split in ("validation", "test"):
        assert s["measures_augmented"][split] == s["measures"][split]
        assert not embedded.shifts(split).any()
    assert embedded.shifts("train").any()
    seen = {}
    for split in datasets.SPLITS:
        for index in np.unique(embedded.piece_index(split)):
            assert pieces[index]["split"] == split
            assert seen.setdefault(index, split) == split
    assert sum(p["measures"] for p in pieces if p["split"] == "train") == s["measures"]["train"]


def test_every_in_range_transposition_of_a_training_piece(embedded):
    vocab = embedded.vocabulary
    tokens, index, shifts = embedded.tokens("train"), embedded.piece_index("train"), embedded.shifts("train")
    pieces = embedded.pieces()
    for k in np.unique(index)[:25]:
        lo, hi = pieces[k]["shifts"]
        rows = index == k
        assert sorted(set(shifts[rows].tolist())) == list(range(lo, hi + 1))
        assert (rows.sum()) == pieces[k]["measures"] * (hi - lo + 1)
        low = vocab.pitches(tokens[rows & (shifts == lo)])
        high = vocab.pitches(tokens[rows & (shifts == hi)])
        assert low[low >= 0].min() == vocab.min_pitch and high.max() == vocab.max_pitch


def test_no_transposition_options(abc_root, tmp_path):
    off = datasets.build(DatasetConfig(name="embedded", data_root=str(abc_root), transpose=False), tmp_path,
                         progress=False, workers=1)
    assert off.stats["measures_augmented"] == off.stats["measures"]
    two = datasets.build(DatasetConfig(name="embedded", data_root=str(abc_root), max_transpose=2), tmp_path,
                         progress=False, workers=1)
    assert set(np.unique(two.shifts("train")).tolist()) <= {-2, -1, 0, 1, 2}
    assert two.stats["measures_augmented"]["train"] > off.stats["measures_augmented"]["train"]


# ---------------------------------------------------------------- cache


def test_cache_reuse_and_rebuild(abc_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(abc_root, root)
    cfg = DatasetConfig(name="embedded", data_root=str(root))
    first = datasets.build(cfg, tmp_path / "cache", progress=False, workers=1)
    assert not first.reused and (first.path / "manifest.json").is_file()
    again = datasets.build(cfg, tmp_path / "cache", progress=False, workers=1)
    assert again.reused and again.path == first.path
    np.testing.assert_array_equal(again.tokens("train"), first.tokens("train"))
    changed = datasets.build(DatasetConfig(name="embedded", data_root=str(root), min_pitch=50), tmp_path / "cache",
                             progress=False, workers=1)
    assert not changed.reused and changed.path != first.path and changed.vocabulary.min_pitch == 50
    (root / "more.abc").write_text(tune(200))  # changed input files -> rebuilt
    grown = datasets.build(cfg, tmp_path / "cache", progress=False, workers=1)
    assert not grown.reused and grown.path != first.path and grown.stats["files_total"] == 5
    (grown.path / "tokens_train.npy").unlink()  # a damaged cache is rebuilt, not trusted
    repaired = datasets.build(cfg, tmp_path / "cache", progress=False, workers=1)
    assert not repaired.reused and repaired.tokens("train").shape == grown.tokens("train").shape
    assert not [p for p in (tmp_path / "cache").iterdir() if ".tmp-" in p.name]
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["cache_version"] == datasets.CACHE_VERSION and manifest["config"] == cfg.to_dict()


# ---------------------------------------------------------------- tf.data


def test_make_tf_dataset_shapes_dtypes_and_values(embedded):
    tf = pytest.importorskip("tensorflow")
    tokens = embedded.tokens("validation")[:100]
    vocab = embedded.vocabulary
    names = attributes.DEFAULT_FOUR
    ds = datasets.make_tf_dataset(tokens, vocab, names, batch_size=16, shuffle=False)
    assert ds.element_spec[0].shape.as_list() == [16, 24] and ds.element_spec[0].dtype == tf.int32
    assert ds.element_spec[1].shape.as_list() == [16, 4] and ds.element_spec[1].dtype == tf.float32
    batches = list(ds)
    assert len(batches) == 100 // 16
    np.testing.assert_array_equal(batches[0][0].numpy(), tokens[:16])
    np.testing.assert_allclose(batches[0][1].numpy(), attributes.compute(tokens[:16], vocab, names), atol=1e-6)
    keep = datasets.make_tf_dataset(tokens, vocab, names[:2], batch_size=16, shuffle=False, drop_remainder=False)
    assert sum(int(b[0].shape[0]) for b in keep) == 100


def test_make_tf_dataset_shuffle_is_seeded_and_repeats(embedded):
    pytest.importorskip("tensorflow")
    tokens = embedded.tokens("validation")[:64]
    vocab = embedded.vocabulary

    def first_epoch(seed):
        ds = datasets.make_tf_dataset(tokens, vocab, ("note_density",), batch_size=64, seed=seed)
        return next(iter(ds))[0].numpy()

    a, b, c = first_epoch(1), first_epoch(1), first_epoch(2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert sorted(map(tuple, a)) == sorted(map(tuple, tokens))  # a permutation, nothing lost
    rep = datasets.make_tf_dataset(tokens, vocab, ("note_density",), batch_size=48, repeat=True)
    assert len(list(rep.take(5))) == 5


# ---------------------------------------------------------------- leak-free splits (melody groups)

from musicvae_xai.datasets import grouping  # noqa: E402
from musicvae_xai.representation import FULL_RANGE  # noqa: E402

SCALE = [60, 62, 64, 65, 67, 69, 71, 72, 74, 76, 77, 79]
ABC_NAMES = "CDEFGABcdefg"
MELODY = [SCALE[(k * 3 + k // 4) % 8] for k in range(32)]  # 4 bars of eighths


def _abc_eighths(pitches) -> str:
    bars = [" ".join(ABC_NAMES[SCALE.index(p)] for p in pitches[b:b + 8]) for b in range(0, len(pitches), 8)]
    return "X:1\nT:The tune\nM:4/4\nL:1/8\nK:C\n" + "|".join(bars) + "|]\n"


def _midi_eighths(pitches, shift=0):
    return _midi_bytes([(p + shift, k * 0.5, k * 0.5 + 0.5) for k, p in enumerate(pitches)])


def _ids_in_different_splits(first: str, template: str) -> str:
    """A piece id made from ``template`` whose own hash split differs from ``first``'s."""
    return next(template.format(n) for n in range(1000)
                if split_of(template.format(n), (0.8, 0.1, 0.1)) != split_of(first, (0.8, 0.1, 0.1)))


def test_opening_keys_are_transposition_invariant_and_rhythm_sensitive():
    rng = np.random.default_rng(0)
    m = np.full((6, 24), FULL_RANGE.hold_id, np.int32)
    m[:, ::3] = rng.integers(60, 72, size=(6, 8))
    keys = grouping.opening_keys(m)
    assert len(keys) == 2 and set(keys) <= set(grouping.fingerprints(m))
    assert grouping.opening_keys(m + np.where(m < 128, 5, 0)) == keys            # up a fourth
    moved = m.copy()
    moved[2, 3], moved[2, 4] = FULL_RANGE.hold_id, moved[2, 3]                   # one onset a tick late
    assert not set(grouping.opening_keys(moved)) & set(keys)
    pickup = np.concatenate([np.full((1, 24), FULL_RANGE.rest_id, np.int32), m])  # a bar more in front
    assert set(grouping.opening_keys(pickup)) & set(keys)
    assert grouping.opening_keys(m[:3]) == []                                    # too short: 3 bars
    sparse = np.full((4, 24), FULL_RANGE.hold_id, np.int32)
    sparse[:, 0] = 60                                                            # 4 onsets < MIN_ONSETS
    assert grouping.fingerprints(sparse) == []                                   # and one skeleton note


def _melody(pitches, ticks=6, bars=8):
    """FULL_RANGE measures [bars, 24] of ``pitches`` (None: a rest) of ``ticks`` each, holds after onsets."""
    flat = np.full(bars * 24, FULL_RANGE.hold_id, np.int32)
    t = 0
    for p in pitches:
        if isinstance(p, tuple):  # (pitch, ticks)
            p, n = p
        else:
            n = ticks
        flat[t] = FULL_RANGE.rest_id if p is None else p
        if p is None:
            flat[t:t + n] = FULL_RANGE.rest_id
        t += n
    return flat[:bars * 24].reshape(bars, 24)


def test_melody_keys_catch_a_shared_melody_despite_pickup_ornament_rests_and_rhythm():
    tune = [67, 66, 64, 66, 62, 64, 66, 67, 67, 62, 59, 60, 62, 60, 59, 57, 59, 55, 57, 59]
    keys = set(grouping.melody_keys(_melody(tune)))
    assert len(keys) == 3 and not keys & set(grouping.opening_keys(_melody(tune)))
    variants = {
        "transposed": _melody([p + 3 for p in tune]),
        "pickup note": _melody([62] + tune),
        "two pickup notes": _melody([60, 62] + tune),
        # passing notes of a third of a beat between the beats: shorter than the median note
        "ornament": _melody([x for p in tune[:8] for x in ((p, 4), (p + 1, 2))] + tune[8:]),
        # an instrumental version: the last beat of the phrase is a rest, the next note repeats the pitch
        "instrumental": _melody(tune[:8] + [None] + tune[8:]),
        "rhythm": _melody([(p, 12 if i % 4 == 3 else 6) for i, p in enumerate(tune)]),
    }
    for name, measures in variants.items():
        assert keys & set(grouping.melody_keys(measures)), name
    other = [67, 69, 71, 72, 74, 72, 71, 69, 67, 65, 64, 62, 60, 62, 64, 65, 67]
    assert not keys & set(grouping.melody_keys(_melody(other)))
    assert grouping.melody_keys(_melody(tune[:10])) == []  # too few skeleton notes
    assert grouping.melody_skeleton(_melody([60, 60, None, 60, 62])) == [60, 62]  # repeats merged, rests ignored
    groups = grouping.group_pieces(["b", "a", "c"], [grouping.fingerprints(variants["instrumental"]),
                                                     grouping.fingerprints(_melody(tune)),
                                                     grouping.fingerprints(_melody(other))])
    assert groups == ["a", "a", "c"]


def test_group_pieces_is_transitive_and_named_by_the_smallest_id():
    groups = grouping.group_pieces(["c", "a", "b", "d", "e"], [["k1"], ["k2"], ["k1", "k2"], [], ["k3"]])
    assert groups == ["a", "a", "a", "d", "e"]
    stats = grouping.duplicate_stats(groups, ["s1", "s2", "s1", "s1", "s1"], [["k1"], ["k2"], ["k1"], [], ["k3"]])
    assert stats == {"duplicate_groups": 1, "duplicate_pieces": 3, "cross_source_groups": 1,
                     "unfingerprinted_pieces": 1}


@pytest.fixture(scope="module")
def leak_build(tmp_path_factory):
    """irish data root: one melody in O'Neill's (ABC, C major) and twice in CRÉ (MIDI, transposed up a
    tone and down a minor third) under file names whose own hashes fall in different splits; a
    3-bar transposed copy of its opening (too short for an opening key, long enough for a melody key)
    and a sparse 4-bar tune (too short for either); and ten other tunes."""
    root = tmp_path_factory.mktemp("leak") / "data"
    midi, abc_dir = root / "irish_cre" / "MIDI", root / "irish_oneills1850"
    midi.mkdir(parents=True)
    abc_dir.mkdir(parents=True)
    (abc_dir / "book.abc").write_text(_abc_eighths(MELODY))
    abc_id = "irish_oneills1850/book.abc#0:X1"
    name_a = _ids_in_different_splits(abc_id, "irish_cre/MIDI/first_copy{}.mid")
    name_b = _ids_in_different_splits(name_a, "irish_cre/MIDI/other_copy{}.mid")
    (root / name_a).write_bytes(_midi_eighths(MELODY, 2))
    (root / name_b).write_bytes(_midi_eighths(MELODY, -3))
    (midi / "short.mid").write_bytes(_midi_eighths(MELODY[:24], 4))
    (midi / "sparse.mid").write_bytes(_midi_bytes([(64 + k, 4 * k, 4 * k + 4) for k in range(4)]))
    rng = random.Random(5)
    for n in range(10):
        (midi / f"other{n}.mid").write_bytes(_midi_eighths([rng.choice(SCALE[:8]) for _ in range(32)]))
    built = datasets.build(DatasetConfig(name="irish", data_root=str(root)), tmp_path_factory.mktemp("cache"),
                           progress=False, workers=1)
    return built, {abc_id, name_a, name_b}


def test_transposed_copies_across_sources_land_in_one_split(leak_build):
    built, copies = leak_build
    by_id = {p["id"]: p for p in built.pieces()}
    assert copies <= set(by_id)
    own = {split_of(pid, (0.8, 0.1, 0.1)) for pid in copies}
    assert len(own) >= 2  # hashed one by one they would be split apart
    group = min(copies)
    assert {by_id[pid]["group"] for pid in copies} == {group}
    assert {by_id[pid]["split"] for pid in copies} == {split_of(group, (0.8, 0.1, 0.1))}
    s = built.stats
    # the 3-bar transposed copy of the opening is too short for an opening key, but its melody key joins it
    assert s["duplicate_groups"] == 1 and s["duplicate_pieces"] == 4 and s["cross_source_groups"] == 1
    assert by_id["irish_cre/MIDI/short.mid"]["group"] == group
    for split in datasets.SPLITS:  # no measure of the melody in any other split
        rows = {built.pieces()[i]["id"] for i in np.unique(built.piece_index(split))}
        assert not (rows & copies) or split == by_id[group]["split"]


def test_too_short_melodies_are_kept_and_split_by_their_id(leak_build):
    built, _ = leak_build
    by_id = {p["id"]: p for p in built.pieces()}
    assert built.stats["unfingerprinted_pieces"] == 1
    p = by_id["irish_cre/MIDI/sparse.mid"]  # 4 notes: no opening key, no melody key
    assert not p["fingerprinted"] and p["group"] == p["id"] and p["split"] == split_of(p["id"], (0.8, 0.1, 0.1))
    assert p["measures"] >= 3
    assert by_id["irish_cre/MIDI/short.mid"]["fingerprinted"]  # 3 bars: a melody key only


def test_splits_json_names_every_kept_piece_and_its_split(leak_build):
    built, _ = leak_build
    on_disk = json.loads((built.path / "splits.json").read_text())
    assert on_disk == built.splits() == {p["id"]: p["split"] for p in built.pieces()}
    assert len(on_disk) == built.stats["pieces"] == 15
    for pid in on_disk:
        source, rel = pid.split("/", 1)
        assert source in ("irish_cre", "irish_oneills1850")
        assert pathlib.PurePosixPath(rel.split("#")[0]).suffix in (".mid", ".abc")
    for split in datasets.SPLITS:
        ids = [p["id"] for p in built.pieces(split)]
        assert sorted(ids) == sorted(pid for pid, s in on_disk.items() if s == split)
        assert all(p["split"] == split for p in built.pieces(split))
        assert len(ids) == built.stats["pieces_per_split"][split]
    with pytest.raises(ValueError, match="unknown split"):
        built.pieces("dev")
