"""One bar numbering, as a score prints it: the first complete bar is bar 1, a pickup before it bar 0.
The API's ``bar_numbers=`` picks that bar of the score, every MIDI writer marks it so, the summaries,
the explorer's upload answer and the error messages count alike, and the former 0-based ``bars=``
is refused with a message that says what replaced it."""

import pathlib

import pytest
from midi_fixtures import humanised_midi, read_back
from music21 import converter, stream
from test_midi_io import VOCAB, EchoClient

from musicvae_xai import music_io
from musicvae_xai.explorer.data import read_upload
from musicvae_xai.readers import abc
from musicvae_xai.representation import Vocabulary
from musicvae_xai.serving import commands

WIDE = Vocabulary(0, 127)
#: O'Neill's Music of Ireland, shipped with the package: tune 1 opens with a pickup of one beat.
TUNEBOOK = pathlib.Path(__file__).resolve().parents[1] / "musicvae_xai" / "embedded_data" / \
    "oneills1850_common_time_1.abc"
#: Three bars without a pickup, each with its own notes.
COUNTING = "X:1\nT:Counting\nM:4/4\nL:1/4\nK:C\nCDEF|GABc|dcBA|\n"


def onset_pitches(tokens) -> list:
    """MIDI pitches of the onsets of one measure in ``WIDE`` ids."""
    return [p for p in WIDE.decode(tokens) if isinstance(p, int)]


def score_bars(text: str) -> dict:
    """{measure number music21 gives: MIDI pitches of its notes} of an ABC tune (music21 numbers a
    pickup 0, as engravers do)."""
    score = converter.parseData(abc.clean_header(text), format="abc")
    part = score.parts[0] if getattr(score, "parts", None) else score
    return {m.number: [n.pitch.midi for n in m.flatten().notes if not n.duration.isGrace]
            for m in part.getElementsByClass(stream.Measure)}


def test_bar_n_is_the_nth_bar_of_a_real_tune_with_a_pickup():
    text = abc.split_tunebook(abc.decode(TUNEBOOK.read_bytes()))[1].text
    measures = music_io.read_file(TUNEBOOK, WIDE, tune=1)
    assert measures.title == "The Little Girl of my Heart"
    assert measures.bar_numbers[0] == 0                                    # the pickup
    printed = score_bars(text)
    checked = 0
    for number in measures.bar_numbers[1:]:
        picked = music_io.read_file(TUNEBOOK, WIDE, tune=1, bar_numbers=[int(number)])
        assert list(picked.bar_numbers) == [number]
        assert onset_pitches(picked.tokens[0]) == printed[int(number)], number
        checked += 1
    assert checked >= 8


def test_bar_n_is_the_nth_bar_without_a_pickup(tmp_path):
    path = tmp_path / "counting.abc"
    path.write_text(COUNTING)
    assert list(music_io.read_file(path, WIDE).bar_numbers) == [1, 2, 3]
    third = music_io.read_file(path, WIDE, bar_numbers=[3, 1])
    assert [onset_pitches(t) for t in third.tokens] == [[74, 72, 71, 69], [60, 62, 64, 65]]
    with pytest.raises(music_io.MusicFileError, match=r"counting\.abc: bar 0 is not a usable 4/4 measure; "
                                                      r"usable bars: 1-3$"):
        music_io.read_file(path, WIDE, bar_numbers=[0])


def test_a_daw_pickup_bar_is_bar_0_and_bar_1_the_first_full_bar(tmp_path):
    path = tmp_path / "played.mid"
    notes = humanised_midi(path, bars=3, lengths=(0.95, 0.98))
    measures = music_io.read_file(path, WIDE)
    assert list(measures.bar_numbers) == [0, 1, 2, 3]
    first_full = [p for p, onset, _ in notes if 1.0 <= onset < 5.0]
    assert onset_pitches(music_io.read_file(path, WIDE, bar_numbers=[1]).tokens[0]) == first_full


def test_the_former_zero_based_argument_is_refused_with_what_replaced_it(tmp_path):
    path = tmp_path / "counting.abc"
    path.write_text(COUNTING)
    with pytest.raises(TypeError, match=r"bars= \(0-based positions\) is now bar_numbers=.*bars=\[4\] of a "
                                        r"piece without a pickup is bar_numbers=\[5\]"):
        music_io.read_file(path, WIDE, bars=[0])
    with pytest.raises(TypeError, match="positional"):
        music_io.read_file(path, WIDE, [1])                                 # keyword only: the name says it
    with pytest.raises(TypeError, match="unexpected keyword argument 'bar'"):
        music_io.read_file(path, WIDE, bar=[1])


def test_serving_markers_and_summary_count_from_1(tmp_path):
    path = tmp_path / "counting.abc"
    path.write_text(COUNTING)
    run = lambda verb, **kw: commands.run(EchoClient(), verb, commands.Options(midi=str(path), **kw))  # noqa: E731
    out = run("reconstruct", out=str(tmp_path / "rec.mid"), bar_numbers=[3, 1])
    assert out["bar_numbers"] == [3, 1] and out["input"] == "Counting"
    assert [m for _, m in read_back(out["out"])["markers"]] == ["bar 3 reconstructed", "bar 1 reconstructed"]
    out = run("traverse", out=str(tmp_path / "tr.mid"), bar_numbers=[2], control=0, values=[0.0, 1.0])
    assert [m for _, m in read_back(out["out"])["markers"]] == ["bar 2: control 0 = +0.0", "bar 2: control 0 = +1.0"]
    with pytest.raises(music_io.MusicFileError, match="bar 4 is not a usable 4/4 measure; usable bars: 1-3"):
        run("encode", bar_numbers=[4])
    assert commands.Options(bar_numbers=("2", "3")).bar_numbers == (2, 3)       # as flags give them


def test_explainer_markers_count_from_1(tmp_path):
    from musicvae_xai.explain import Explainer

    path = tmp_path / "counting.abc"
    path.write_text(COUNTING)
    ex = Explainer.pretrained()
    enc = ex.encode_file(path, bar_numbers=[2, 3])
    assert list(enc.source.bar_numbers) == [2, 3]
    markers = read_back(ex.write_reconstruction(enc, tmp_path / "rec.mid"))["markers"]
    assert markers == [(0.0, "bar 2 reconstructed"), (4.0, "bar 3 reconstructed")]
    tr = ex.traverse(enc, 0, values=[0.0])
    assert read_back(ex.write_traversal(tr, tmp_path / "tr.mid", index=1, start=enc))["markers"][0] == (
        0.0, "bar 3 input")
    plain = ex.encode(enc.tokens)                                           # no source file: measures 1, 2
    assert [m for _, m in read_back(ex.write_reconstruction(plain, tmp_path / "p.mid"))["markers"]] == [
        "measure 1 reconstructed", "measure 2 reconstructed"]


def test_the_explorer_upload_gives_bar_numbers(tmp_path):
    got = read_upload("counting.abc", COUNTING.encode(), VOCAB)
    assert got["bar_numbers"] == [1, 2, 3] and "bars" not in got
    humanised_midi(tmp_path / "played.mid", bars=2)
    got = read_upload("played.mid", (tmp_path / "played.mid").read_bytes(), VOCAB)
    assert got["bar_numbers"] == [0, 1, 2]                                   # a pickup, then bars 1 and 2

