"""Helpers shared by the serving client tests and the benchmark: inputs for every verb, array checks."""

import numpy as np

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def call_every_verb(client, seed: int = 0, batch: int = 3) -> dict:
    """{verb: outputs} of one call of every verb of a ``ModelClient`` (plus ``serving_default``), with
    inputs shaped from the client's own metadata, the same for every client given the same seed."""
    rng = np.random.default_rng(seed)
    spec = client.metadata()["signatures"]
    latent = spec["sample"]["inputs"]["z"]["shape"][-1]
    vocab = spec["decode"]["outputs"]["probabilities"]["shape"][-1]
    tokens = rng.integers(0, vocab, size=(batch, 24))
    z = rng.normal(size=(batch, latent)).astype(np.float32)
    controls = None
    if "controls" in spec["decode"]["inputs"]:
        controls = rng.uniform(0.0, 1.0, size=(batch, spec["decode"]["inputs"]["controls"]["shape"][-1]))
    return {"encode": client.encode(tokens), "decode": client.decode(z, controls),
            "reconstruct": client.reconstruct(tokens), "traverse": client.traverse(tokens, 1, [-1.0, 0.0, 0.5]),
            "sample": client.sample(z), "serving_default": client.predict("serving_default", {"tokens": tokens})}


def assert_same_arrays(got: dict, want: dict) -> None:
    """Equal keys, dtypes and shapes; equal integer outputs; float outputs equal to float32 round-off
    (the paths run the same graph, but TF2 function calls and v1 sessions may optimise it differently)."""
    assert sorted(got) == sorted(want)
    for verb in want:
        assert sorted(got[verb]) == sorted(want[verb]), verb
        for key, w in want[verb].items():
            g = got[verb][key]
            assert isinstance(g, np.ndarray), (verb, key, type(g))
            assert g.dtype == w.dtype and g.shape == w.shape, (verb, key, g.dtype, w.dtype, g.shape, w.shape)
            if w.dtype.kind == "f":
                np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6, err_msg=f"{verb}/{key}")
            else:
                np.testing.assert_array_equal(g, w, err_msg=f"{verb}/{key}")
