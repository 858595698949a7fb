"""``--cpu_threading``: who decides TensorFlow's thread pools in a training process (training/cpu_threads.py).

Thread pools can only be set before a process's first op, so each case runs in a fresh subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from musicvae_xai.config import ConfigError, RunConfig

_PROBE = """
import json, sys
import tensorflow as tf
from musicvae_xai.training import cpu_threads
if sys.argv[2] == "ran_an_op_first":
    tf.constant(1.0) + 1.0
line = cpu_threads.apply(sys.argv[1], xla=sys.argv[2] == "xla")
print(json.dumps({"line": line, "inter": tf.config.threading.get_inter_op_parallelism_threads(),
                  "intra": tf.config.threading.get_intra_op_parallelism_threads(),
                  "cores": cpu_threads.usable_cores()}))
"""


def _probe(policy: str, first: str = "", **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if k not in ("TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS")}
    environ.update(env, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", _PROBE, policy, first or "-"], env=environ, capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_ops_gives_every_core_to_independent_ops_and_one_to_each_op():
    r = _probe("ops")
    assert (r["inter"], r["intra"]) == (r["cores"], 1)
    assert "--cpu_threading=ops" in r["line"]


@pytest.mark.parametrize("policy,first,env,says", [
    ("tensorflow", "", {}, "--cpu_threading=tensorflow"),
    ("ops", "xla", {}, "--xla"),  # an XLA program parallelises over the intra-op pool
    ("ops", "", {"TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1"}, "TF_NUM_INTEROP_THREADS=1"),
    ("ops", "ran_an_op_first", {}, "already initialised"),
])
def test_tensorflow_keeps_its_pools_when_asked_or_when_it_is_not_ours_to_decide(policy, first, env, says):
    r = _probe(policy, first, **env)
    assert (r["inter"], r["intra"]) == (0, 0)  # left to TensorFlow (which reads the environment itself)
    assert says in r["line"]


def test_unknown_policies_are_refused():
    with pytest.raises(ConfigError, match="cpu_threading"):
        RunConfig(cpu_threading="many").validate()
    from musicvae_xai.training import cpu_threads

    with pytest.raises(ValueError, match="cpu_threading"):
        cpu_threads.apply("many")


def test_the_policy_may_change_on_resume():
    from musicvae_xai.config import RESUMABLE_FIELDS

    assert "cpu_threading" in RESUMABLE_FIELDS
