"""Reading TensorBoard event files back in tests: the HParams plugin's session of a run folder."""

import glob
import os

import tensorflow as tf
from tensorboard.plugins.hparams import metadata, plugin_data_pb2

from musicvae_xai.training.hparams import HPARAMS_DIRNAME


def hparams_session(run_dir) -> tuple:
    """(session_start_info, experiment or None, {tag: (value, step)}) of run_dir/hparams (one file)."""
    files = glob.glob(os.path.join(str(run_dir), HPARAMS_DIRNAME, "events.out.tfevents.*"))
    assert len(files) == 1, files
    sessions, experiments, finals = [], [], {}
    for event in tf.compat.v1.train.summary_iterator(files[0]):
        for value in event.summary.value:
            if value.metadata.plugin_data.plugin_name == metadata.PLUGIN_NAME:
                data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
                if data.HasField("session_start_info"):
                    sessions.append(data.session_start_info)
                if data.HasField("experiment"):
                    experiments.append(data.experiment)
            else:
                finals[value.tag] = (float(tf.make_ndarray(value.tensor)), event.step)
    assert len(sessions) == 1 and len(experiments) <= 1
    return sessions[0], (experiments[0] if experiments else None), finals
