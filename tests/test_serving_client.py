"""The serving client CLI: musicvae_xai.serving.client (thin), .commands (the verbs), .connect, and the
music files it reads and writes (musicvae_xai.music_io)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from musicvae_xai import music_io
from musicvae_xai.representation import Vocabulary
from musicvae_xai.serving import GrpcClient, LocalModel, RestClient, commands, connect
from serving_doubles import GrpcDouble
from serving_helpers import free_port

VOCAB = Vocabulary(55, 84)
MEASURE = [60, "hold", "hold", 62, "hold", "hold", 64, "hold", "hold", "hold", "hold", "hold",
           67, "hold", "hold", "hold", "hold", "hold", 72, "hold", "rest", "hold", "hold", "hold"]


@pytest.fixture
def midi_file(tmp_path):
    tokens = np.stack([VOCAB.encode(MEASURE), VOCAB.encode([59, "hold"] * 12)])
    return str(music_io.write_measures(tokens, VOCAB, str(tmp_path / "in.mid"))), tokens


def _markers(path) -> list:
    import mido

    return [m.text for track in mido.MidiFile(str(path)).tracks for m in track if m.type == "marker"]


def test_midi_round_trip_bars_and_transposition(midi_file, tmp_path):
    path, tokens = midi_file
    np.testing.assert_array_equal(music_io.read_file(path, VOCAB).tokens, tokens)
    np.testing.assert_array_equal(music_io.read_file(path, VOCAB, bar_numbers=[2]).tokens, tokens[1:])
    high = Vocabulary(70, 96)  # the melody (59..72) does not fit: moved up by an octave
    moved = music_io.read_file(path, high).tokens
    assert high.decode(moved[0])[0] == 72
    with pytest.raises(music_io.MusicFileError, match="bar 5 is not a usable 4/4 measure; usable bars: 1-2"):
        music_io.read_file(path, VOCAB, bar_numbers=[5])
    with pytest.raises(music_io.MusicFileError, match="shifted by 30 leave the model.s range"):
        music_io.read_file(path, VOCAB, transpose=30)
    with pytest.raises(music_io.MusicFileError, match="no such file"):
        music_io.read_file(str(tmp_path / "absent.mid"), VOCAB)
    with pytest.raises(music_io.MusicFileError, match="wider than the model.s range"):
        music_io.fit_shift(np.array([[40, 90] + [129] * 22]), VOCAB)


def test_connect_picks_the_client_from_the_target(tiny_export):
    assert isinstance(connect(str(tiny_export("measure_vae"))), LocalModel)
    assert isinstance(connect("http://127.0.0.1:8501", "m"), RestClient)
    assert isinstance(connect("127.0.0.1:8500", "m"), GrpcClient)
    assert isinstance(connect("grpc://127.0.0.1:8500", "m"), GrpcClient)
    with pytest.raises(ValueError, match="--model is required"):
        connect("127.0.0.1:8500")
    with pytest.raises(ValueError, match="neither an export directory"):
        connect("no-such-folder", "m")


@pytest.mark.parametrize("model_name", ["measure_vae", "adversarial_vae"])
def test_every_verb_on_a_local_export(model_name, local_model, midi_file, tmp_path):
    client, (path, tokens) = local_model(model_name), midi_file
    run = lambda verb, **kw: commands.run(client, verb, commands.Options(**kw))  # noqa: E731
    out = run("reconstruct", midi=path, out=str(tmp_path / "rec.mid"))
    assert out["measures"] == 2 and os.path.getsize(out["out"]) > 0
    assert out["token_accuracy"] == pytest.approx(np.mean(client.reconstruct(tokens)["tokens"] == tokens))
    run("encode", midi=path, out=str(tmp_path / "z.json"))
    encoded = json.load(open(tmp_path / "z.json"))
    np.testing.assert_allclose(encoded["z_mean"], client.encode(tokens)["z_mean"], rtol=1e-6)
    out = run("decode", z=str(tmp_path / "z.json"), out=str(tmp_path / "dec.mid"))
    assert out["measures"] == 2 and os.path.getsize(out["out"]) > 0
    out = run("traverse", midi=path, bar_numbers=[1], control=1, values=[-1.0, 0.0, 1.0], out=str(tmp_path / "tr.mid"))
    assert np.asarray(out["attributes"]).shape == (1, 3, 4)
    out = run("sample", num=3, seed=5, out=str(tmp_path / "s.mid"))
    assert out["measures"] == 3
    # Markers a person reads count from 1, as bars do.
    assert _markers(tmp_path / "dec.mid") == ["code 1 decoded", "code 2 decoded"]
    assert _markers(tmp_path / "s.mid") == [f"sample {i} (seed 5)" for i in (1, 2, 3)]
    meta = run("metadata")
    assert meta["signatures"]["traverse"]["inputs"] == {"control": "int32 scalar", "tokens": "int32 [B, 24]",
                                                         "values": "float32 [S]"}


def test_verbs_refuse_bad_input_with_one_line(local_model, midi_file, tmp_path):
    client = local_model("measure_vae")
    for verb, kw, pattern in [
        ("reconstruct", {"midi": midi_file[0]}, "reconstruct needs --out"),
        ("decode", {"out": "x.mid"}, "decode needs --z"),
        ("sample", {"num": 0, "out": "x.mid"}, "--num must be at least 1"),
        ("dance", {}, "unknown verb 'dance'"),
        ("decode", {"z": str(tmp_path / "none.json"), "out": "x.mid"}, "no such file"),
    ]:
        with pytest.raises(commands.CommandError, match=pattern):
            commands.run(client, verb, commands.Options(**kw))
    wrong = commands.Options(min_pitch=40, max_pitch=84)

    class Remote:  # a server's model: the vocabulary comes from the flags, checked against the signature
        assets = {}
        signature_spec = client.signature_spec

    with pytest.raises(commands.CommandError, match="the model's vocabulary has 34 tokens, --min_pitch=40 "
                                                    "--max_pitch=84 give 49"):
        commands.vocabulary_for(Remote(), wrong)


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "musicvae_xai.serving.client", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.mark.slow
def test_cli_reconstruct_through_grpc(serving_backend, midi_file, tmp_path):
    with GrpcDouble(serving_backend, max_lifetime=300) as server:
        out = _cli(f"--target={server.target}", "--model=measure_vae", "reconstruct", f"--midi={midi_file[0]}",
                   f"--out={tmp_path / 'out.mid'}")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    assert summary["measures"] == 2 and os.path.exists(summary["out"])


def test_cli_unreachable_server_exits_with_one_line(tmp_path):
    target = f"127.0.0.1:{free_port()}"
    out = _cli(f"--target={target}", "--model=measure_vae", "--retries=1", "--timeout=2", "metadata")
    assert out.returncode != 0
    assert f"error: gRPC server {target}, model 'measure_vae': cannot reach the server after 2 attempts" in out.stderr
