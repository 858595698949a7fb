"""Gradient clipping by the global norm of the all-replica gradient."""

import os
import pathlib
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from musicvae_xai.models import optim

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_single_device_clipping_matches_clip_by_global_norm_and_keeps_none():
    grads = [tf.constant([3.0, 4.0]), None,
             tf.IndexedSlices(tf.constant([[12.0]]), tf.constant([1]), tf.constant([2, 1]))]
    clipped, norm = optim.clip_by_global_norm_across_replicas(grads, 1.0)
    assert float(norm) == pytest.approx(13.0)
    assert clipped[1] is None
    np.testing.assert_allclose(clipped[0].numpy(), [3 / 13, 4 / 13], rtol=1e-6)
    np.testing.assert_allclose(clipped[2].numpy(), [[0.0], [12 / 13]], rtol=1e-6)


def test_apply_gradients_clips_only_when_asked():
    for clip, want in ((0.0, [-3.0, -4.0]), (1.0, [-0.6, -0.8]), (10.0, [-3.0, -4.0])):
        v = tf.Variable([0.0, 0.0])
        opt = keras.optimizers.SGD(1.0)
        norm = optim.apply_gradients(opt, [tf.constant([3.0, 4.0])], [v], clip)
        np.testing.assert_allclose(v.numpy(), want, rtol=1e-6)
        assert (norm is None) == (clip == 0.0)


@pytest.mark.slow
def test_mirrored_replicas_clip_the_global_gradient_like_one_device():
    """Two replicas holding shares [3, 0, 4] and [0, 6, 8] of the global gradient [3, 6, 12] (norm
    13.75) take the same clipped step as one device holding [3, 6, 12]."""
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from musicvae_xai.models import optim
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        shares = tf.constant([[3.0, 0.0, 4.0], [0.0, 6.0, 8.0]])
        for clip in (0.0, 1.0):
            with strategy.scope():
                v = tf.Variable([0.0, 0.0, 0.0])
                opt = keras.optimizers.SGD(1.0)
                opt.build([v])

            def step():
                ctx = tf.distribute.get_replica_context()
                norm = optim.apply_gradients(opt, [tf.gather(shares, ctx.replica_id_in_sync_group)], [v], clip)
                return tf.constant(-1.0) if norm is None else norm

            norms = strategy.experimental_local_results(tf.function(lambda: strategy.run(step))())
            print("RESULT", clip, *v.numpy().tolist(), *[float(n) for n in norms])
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = {float(line.split()[1]): [float(x) for x in line.split()[2:]]
            for line in res.stdout.splitlines() if line.startswith("RESULT")}
    g = np.array([3.0, 6.0, 12.0])
    norm = np.linalg.norm(g)
    np.testing.assert_allclose(rows[0.0][:3], -g, rtol=1e-6)  # unclipped: the summed gradient
    np.testing.assert_allclose(rows[1.0][:3], -g / norm, rtol=1e-6)  # clipped as one device would
    np.testing.assert_allclose(rows[1.0][3:], [norm, norm], rtol=1e-6)  # both replicas see the global norm
