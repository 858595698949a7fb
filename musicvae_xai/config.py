"""The run configuration: every setting of a training run, its validation, and save/load with a run.

A ``RunConfig`` is written as ``config.json`` next to the checkpoints of a run and under
``assets.extra/`` of every export, so any artefact reloads without remembering flags.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, Sequence

from musicvae_xai import attributes as attrs
from musicvae_xai.models import registry as model_registry  # TF-free: names and labels, classes lazily

MODELS = model_registry.names()
STRATEGIES = ("default", "mirrored", "multi_worker")
CONFIG_FILENAME = "config.json"
SAMPLING_COINS = ("step", "token")
INITS = ("reference", "keras")
#: Version of the model and loss definitions. 2: reference architectures by default and the
#: AdversarialVAE KL term as a mean over latent dims (docs/FIDELITY.md). Configurations saved before
#: have no ``model_version`` and are refused on load (``check_saved_version``).
MODEL_VERSION = 2

#: Fields that may change between a run and its resumption (how long or how, not what is trained).
RESUMABLE_FIELDS = frozenset({
    "epochs", "train_steps", "checkpoint_every", "eval_every", "log_every", "strategy", "run_dir",
    "cache_dir", "data_root", "xla", "max_to_keep", "eval_summaries", "deterministic",
})


#: Help text of every field; ``musicvae_xai.train`` turns each field into a flag of the same name.
HELP = {
    "model": "Model: measure_vae or adversarial_vae.",
    "latent_dim": "Size of the latent code z (4..256 in the study).",
    "hidden_size": "GRU hidden size H of encoder and decoder.",
    "embedding_dim": "Token embedding size.",
    "num_layers": "GRU layers in encoder and decoder stacks.",
    "dropout": "Dropout between stacked GRU layers: MeasureVAE's encoder and decoder (beat and tick GRUs, as "
               "PyTorch's GRU dropout in ar-vae), the adversarial model's encoder when "
               "--adversarial_encoder_layers > 1.",
    "attributes": "Regularised (MeasureVAE) or controlled (AdversarialVAE) attributes, in order on dims 0..K-1: "
                  "rhythmic_complexity, note_range, note_density, average_interval_jump, contour. "
                  "The paper uses 2 or 4, "
                  "any 1 to 5 are accepted.",
    "beta": "MeasureVAE: weight of the KL term.",
    "gamma": "MeasureVAE: weight of the attribute-regularisation loss.",
    "delta": "MeasureVAE: tanh sharpness in the attribute-regularisation loss.",
    "teacher_forcing": "MeasureVAE: probability that a training batch is teacher-forced.",
    "lambda_d": "AdversarialVAE: weight of the adversarial (flipped-target) term.",
    "lambda_kl": "AdversarialVAE: weight of the KL term, which is KL(q||p) averaged over latent dims and batch "
                 "as in Kawai et al. (FaderVAE), so the paper's 0.1 means the same at every latent size.",
    "num_bins": "AdversarialVAE: ordinal bins per attribute for the discriminator (octiles = 8).",
    "sampling_k": "AdversarialVAE: scheduled sampling constant k, teacher forcing p = k / (k + exp(step / k)).",
    "discriminator_hidden": "AdversarialVAE: 0 = the reference discriminator (Kawai's Classifier: each hidden "
                            "layer halves the width, z -> z/2 -> ...); > 0 = every hidden layer this wide "
                            "(ours before v2).",
    "discriminator_layers": "AdversarialVAE: Linear layers of the discriminator, hidden layers + output "
                            "(reference num_layers = 2: one hidden layer).",
    "adversarial_encoder_layers": "AdversarialVAE: bidirectional GRU layers of the encoder (reference 1).",
    "adversarial_posterior_hidden": "AdversarialVAE: False (reference) = Linear from the GRU states to mean and "
                                    "log-scale; True = MeasureVAE's Linear+SELU hidden layer of 2H before each.",
    "adversarial_state_per_layer": "AdversarialVAE: False (reference) = h1 = tanh(Linear(z)), each higher GRU layer "
                                   "starts from the new state of the layer below at t=0; True = tanh(Linear([z, a])) "
                                   "gives every layer its own initial state.",
    "sampling_coin": "AdversarialVAE scheduled sampling: 'step' (reference) = one coin per tick for the whole "
                     "batch; 'token' = one coin per (example, tick).",
    "one_hot_inputs": "AdversarialVAE: True (reference) = tokens enter the encoder and decoder GRUs one-hot; "
                      "False = through a learned --embedding_dim embedding.",
    "beat_conditioning": "MeasureVAE: True (reference) = the tick GRU gets c_i = SELU(Linear(H->H))(beat output i); "
                         "False = the raw beat output.",
    "logits_relu": "MeasureVAE: True (reference) = ReLU on the decoder logits as ar-vae does; False = plain logits "
                   "(ours before v2; no measured difference, docs/FIDELITY.md).",
    "clip_log_scale": "Both models: clip log sigma of the posterior to [-10, 5] (not in the references; "
                      "off by default).",
    "init": "Weight initialisation: 'reference' = ar-vae's Xavier-normal weights (MeasureVAE) or PyTorch's "
            "defaults (AdversarialVAE), biases PyTorch's default U(+-1/sqrt(fan_in)); 'keras' = Glorot-uniform, "
            "orthogonal recurrent kernels, zero biases (ours before v2).",
    "model_version": "Version of the model and loss definitions (2: reference architectures, AdversarialVAE KL "
                     "mean over dims). Saved configurations without it were made before and are refused.",
    "dataset": "Registered dataset: embedded, irish, turkish, classical, pop.",
    "data_root": "Folder holding the raw datasets (e.g. ../shared/datasets); not needed for embedded.",
    "cache_dir": "Folder for the dataset cache (default ~/.cache/musicvae_xai).",
    "min_pitch": "Lowest MIDI pitch in the vocabulary.",
    "max_pitch": "Highest MIDI pitch in the vocabulary.",
    "allow_cut_time": "Admit 2/2 bars as four quarter beats.",
    "transpose": "Transposition augmentation of the training split.",
    "batch_size": "Global batch size (split over replicas).",
    "learning_rate": "Adam learning rate.",
    "clip_norm": "Global gradient-norm clipping (0 = off; the adversarial model always clips at 1.0).",
    "epochs": "Training epochs (ignored when --train_steps > 0).",
    "train_steps": "Total training steps; overrides --epochs when > 0.",
    "seed": "Random seed: weights, data order, sampling, dropout.",
    "run_dir": "Folder for checkpoints, config.json and TensorBoard summaries; re-running resumes.",
    "strategy": "tf.distribute strategy: default, mirrored or multi_worker (reads TF_CONFIG).",
    "checkpoint_every": "Save a checkpoint every N steps (a crash loses at most N steps).",
    "eval_every": "Validate every N steps (0 = once per epoch).",
    "eval_summaries": "At each validation, write piano-roll images and audio of reconstructions and traversals.",
    "log_every": "Write training summaries every N steps.",
    "max_to_keep": "Checkpoints kept.",
    "xla": "Compile the training step with XLA (single-device runs).",
    "deterministic": "TF op determinism (tf.config.experimental.enable_op_determinism) in training and in the "
                     "evaluation of this run: same seed and flags give bit-identical weights whatever the thread "
                     "counts on one machine; not across CPU types (README, Reproducibility).",
}


class ConfigError(ValueError):
    """A configuration that cannot be trained; the message is one line meant for the user."""


@dataclasses.dataclass
class RunConfig:
    # What is trained.
    model: str = "measure_vae"
    latent_dim: int = 32
    hidden_size: int = 512
    embedding_dim: int = 10
    num_layers: int = 2
    dropout: float = 0.5
    attributes: tuple = attrs.DEFAULT_FOUR
    # MeasureVAE loss weights.
    beta: float = 1e-3
    gamma: float = 1.0
    delta: float = 10.0
    teacher_forcing: float = 0.5
    # AdversarialVAE.
    lambda_d: float = 0.1
    lambda_kl: float = 0.1
    num_bins: int = 8
    sampling_k: float = 1000.0
    discriminator_hidden: int = 0
    discriminator_layers: int = 2
    adversarial_encoder_layers: int = 1
    adversarial_posterior_hidden: bool = False
    adversarial_state_per_layer: bool = False
    sampling_coin: str = "step"
    one_hot_inputs: bool = True
    # MeasureVAE architecture switches (reference behaviour by default, see docs/FIDELITY.md).
    beat_conditioning: bool = True
    logits_relu: bool = True
    # Both models.
    clip_log_scale: bool = False
    init: str = "reference"
    model_version: int = MODEL_VERSION
    # Data.
    dataset: str = "embedded"
    data_root: Optional[str] = None
    cache_dir: Optional[str] = None
    min_pitch: int = 55
    max_pitch: int = 84
    allow_cut_time: bool = False
    transpose: bool = True
    # Optimisation.
    batch_size: int = 256
    learning_rate: float = 1e-4
    clip_norm: float = 0.0
    epochs: int = 30
    train_steps: int = 0  # > 0 overrides epochs
    seed: int = 0
    # Bookkeeping.
    run_dir: str = "runs/default"
    strategy: str = "default"
    checkpoint_every: int = 500
    eval_every: int = 0  # 0: once per epoch
    eval_summaries: bool = True
    log_every: int = 50
    max_to_keep: int = 3
    xla: bool = True
    deterministic: bool = False

    def __post_init__(self):
        self.attributes = tuple(self.attributes)

    def validate(self) -> "RunConfig":
        """Raises ConfigError (one line) for any setting that cannot work; returns self."""
        try:
            model_registry.spec(self.model)
        except model_registry.UnknownModelError as e:
            raise ConfigError(str(e)) from None
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        try:
            attrs.validate_names(self.attributes)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if not self.attributes:
            raise ConfigError("--attributes must name at least one attribute")
        if self.sampling_coin not in SAMPLING_COINS:
            raise ConfigError(f"unknown sampling_coin {self.sampling_coin!r}; "
                              f"choose one of {', '.join(SAMPLING_COINS)}")
        if self.init not in INITS:
            raise ConfigError(f"unknown init {self.init!r}; choose one of {', '.join(INITS)}")
        if self.model_version != MODEL_VERSION:
            raise ConfigError(f"model_version {self.model_version} is not this code's {MODEL_VERSION}")
        if self.discriminator_layers < 1 or self.adversarial_encoder_layers < 1:
            raise ConfigError("discriminator_layers and adversarial_encoder_layers must be at least 1")
        if not 1 <= self.latent_dim <= 4096:
            raise ConfigError(f"latent_dim must be positive, got {self.latent_dim}")
        if self.model == "measure_vae" and self.latent_dim < len(self.attributes):
            raise ConfigError(
                f"latent_dim={self.latent_dim} is smaller than the {len(self.attributes)} regularised "
                f"attributes ({', '.join(self.attributes)}): each needs its own latent dim")
        for name in ("hidden_size", "embedding_dim", "num_layers", "batch_size", "num_bins"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if self.train_steps <= 0 and self.epochs <= 0:
            raise ConfigError("set --epochs or --train_steps to a positive number")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise ConfigError(f"need 0 <= min_pitch <= max_pitch <= 127, got {self.min_pitch}..{self.max_pitch}")
        return self

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["attributes"] = list(self.attributes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, directory: str) -> str:
        """Writes ``config.json`` into ``directory`` atomically; returns its path."""
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, CONFIG_FILENAME)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json() + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, directory_or_file: str) -> "RunConfig":
        path = directory_or_file
        if os.path.isdir(path):
            path = os.path.join(path, CONFIG_FILENAME)
        if not os.path.exists(path):
            raise ConfigError(f"{path}: no saved configuration (is this a run directory?)")
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        check_saved_version(saved, path)
        return cls.from_dict(saved)

    # -- comparisons -----------------------------------------------------------------------------
    def differences(self, other: "RunConfig", ignore: Sequence[str] = RESUMABLE_FIELDS) -> list:
        """Names of the fields that differ, skipping ``ignore``."""
        a, b = self.to_dict(), other.to_dict()
        return sorted(k for k in a if k not in ignore and a[k] != b[k])

    @property
    def vocabulary(self):
        from musicvae_xai.representation import Vocabulary
        return Vocabulary(self.min_pitch, self.max_pitch)


def check_saved_version(saved: dict, where: str) -> None:
    """Refuses (one-line ConfigError) a saved configuration made with other model/loss definitions.

    ``saved`` is a parsed ``config.json`` (run directory or export's ``assets.extra``); ``where`` names it.
    """
    version = saved.get("model_version") if isinstance(saved, dict) else None
    if version != MODEL_VERSION:
        found = "has no model_version field" if version is None else f"has model_version {version!r}"
        raise ConfigError(f"{where} {found}: it was made with other model definitions than this code's "
                          f"model_version {MODEL_VERSION} (AdversarialVAE KL now a mean over latent dims, reference "
                          "architectures; see docs/FIDELITY.md); retrain or use the older code")
