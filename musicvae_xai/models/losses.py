"""Loss terms shared by both models and by the evaluation.

Every per-batch term is returned as a *per-replica share* of the global-batch mean: the sum over the
local examples divided by ``global_batch_size``. Summing the shares over replicas (what a
data-parallel all-reduce of gradients does) gives exactly the loss one device would compute on the
whole global batch. With one device, ``global_batch_size`` is the batch size and the share is the
plain mean.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions


def reconstruction_loss(logits: tf.Tensor, targets: tf.Tensor, global_batch_size) -> tf.Tensor:
    """Mean token cross-entropy: logits float32 [B, T, V], targets int32 [B, T] -> scalar share.

    Uses ``tfd.Categorical(logits).log_prob``; the mean is over the T tokens of each measure and the
    global batch.
    """
    nll = -tfd.Categorical(logits=logits).log_prob(targets)  # [B, T]
    return tf.reduce_sum(tf.reduce_mean(nll, axis=-1)) / tf.cast(global_batch_size, tf.float32)


def kl_loss(mean: tf.Tensor, scale: tf.Tensor, global_batch_size) -> tf.Tensor:
    """Batch mean of sum_dims KL(N(mean, scale) || N(0, 1)): mean, scale float32 [B, Z] -> scalar share.

    This is MeasureVAE's KL loss term (ar-vae ``compute_kld_loss``: ``kld.sum(1).mean()``, times beta) and
    the ``kl`` metric both models report (nats per measure, summed over latent dims).
    """
    kl = kl_per_example(mean, scale)
    return tf.reduce_sum(kl) / tf.cast(global_batch_size, tf.float32)


def kl_loss_mean_over_dims(mean: tf.Tensor, scale: tf.Tensor, global_batch_size) -> tf.Tensor:
    """Mean over latent dims and batch of KL(N(mean, scale) || N(0, 1)): float32 [B, Z] -> scalar share.

    AdversarialVAE's KL loss term, as Kawai et al.'s FaderVAE takes it (a mean over batch *and* dims), so
    ``lambda_kl`` weighs the same per dim at every latent size. Equals ``kl_loss / Z``.
    """
    z = tf.cast(tf.shape(mean)[-1], tf.float32)
    return kl_loss(mean, scale, global_batch_size) / z


def kl_per_example(mean: tf.Tensor, scale: tf.Tensor) -> tf.Tensor:
    """float32 [B]: KL(q(z|x) || p(z)) summed over latent dims, from ``tfd.kl_divergence``."""
    posterior = tfd.Independent(tfd.Normal(mean, scale), reinterpreted_batch_ndims=1)
    prior = tfd.Independent(tfd.Normal(tf.zeros_like(mean), tf.ones_like(scale)), reinterpreted_batch_ndims=1)
    return tfd.kl_divergence(posterior, prior)


def pairwise_regularization(z_local: tf.Tensor, a_local: tf.Tensor, z_all: tf.Tensor, a_all: tf.Tensor,
                            delta: float) -> tf.Tensor:
    """float32 [K]: sum over (i local, j in the global batch) of |tanh(delta (z_i - z_j)) - sign(a_i - a_j)|.

    z_local, a_local float32 [B_local, K] (the regularised dims and their attributes); z_all, a_all
    [B, K] the same for the whole global batch (including the local rows).
    """
    dz = z_local[:, None, :] - z_all[None, :, :]  # [B_local, B, K]
    da = a_local[:, None, :] - a_all[None, :, :]
    return tf.reduce_sum(tf.abs(tf.tanh(delta * dz) - tf.sign(da)), axis=[0, 1])


def gather_rows(replica_context, x: tf.Tensor, row_offset, global_rows) -> tf.Tensor:
    """All replicas' rows of x [B_local, K] in global order, [global_rows, K] (no gradient).

    Written as an all-reduce of zero-padded rows: ``ReplicaContext.all_gather`` fails under
    MultiWorkerMirroredStrategy inside tf.function ("destinations can not be empty").
    """
    x = tf.stop_gradient(x)
    n = tf.shape(x)[0]
    padded = tf.pad(x, [[row_offset, global_rows - row_offset - n], [0, 0]])
    return replica_context.all_reduce(tf.distribute.ReduceOp.SUM, padded)


def attribute_regularization_loss(z: tf.Tensor, attributes: tf.Tensor, delta: float = 10.0,
                                  replica_context=None, row_offset=0, global_batch_size=None) -> tf.Tensor:
    """Attribute-regularisation loss per regularised dim (Pati & Lerch), float32 [K].

    z float32 [B, K]: the regularised latent dims (dims 0..K-1 of the sampled code), attributes float32
    [B, K]. For dim k the loss is the mean over all B x B pairs (i, j) of the global batch of
    |tanh(delta (z_k[i] - z_k[j])) - sign(a_k[i] - a_k[j])|.

    Under a data-parallel strategy each replica sees only its rows (``row_offset`` .. of the global
    batch of ``global_batch_size``). It gathers the (gradient-stopped)
    codes of the whole global batch and returns its share: the value of its rows' pairs divided by
    B^2, with gradients doubled, since the pair term is symmetric in (i, j) and the gathered copies
    carry no gradient. Summed over replicas this gives the exact global value and gradient.
    """
    if replica_context is not None and replica_context.num_replicas_in_sync > 1:
        z_all = gather_rows(replica_context, z, row_offset, global_batch_size)
        a_all = gather_rows(replica_context, attributes, row_offset, global_batch_size)
        n = tf.cast(tf.shape(z_all)[0], tf.float32)
        share = pairwise_regularization(z, attributes, z_all, a_all, delta) / (n * n)
        return share + (share - tf.stop_gradient(share))  # value = share, gradient = 2 x share's
    n = tf.cast(tf.shape(z)[0], tf.float32)
    return pairwise_regularization(z, attributes, z, attributes, delta) / (n * n)


def token_accuracy(logits: tf.Tensor, targets: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Fraction of tokens where argmax(logits) == targets, over the ``mask`` (bool [B, T]) if given."""
    hit = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.cast(targets, tf.int32)),
                  tf.float32)
    if mask is None:
        return tf.reduce_mean(hit)
    m = tf.cast(mask, tf.float32)
    return tf.reduce_sum(hit * m) / tf.maximum(tf.reduce_sum(m), 1.0)


# -- ordinal (cumulative) attribute classes, for the adversarial model's latent discriminator ---------


def ordinal_targets(values: tf.Tensor, bin_edges: tf.Tensor) -> tf.Tensor:
    """Cumulative targets float32 [B, K, C-1]: target[b, k, j] = 1 if values[b, k] > bin_edges[k, j].

    values float32 [B, K] (attribute values), bin_edges float32 [K, C-1] (ascending inner edges of
    C ordered bins). The class of an example is the number of ones: 0 .. C-1.
    """
    values = tf.convert_to_tensor(values, tf.float32)
    return tf.cast(values[:, :, None] > tf.convert_to_tensor(bin_edges, tf.float32)[None], tf.float32)


def ordinal_bce(logits: tf.Tensor, targets: tf.Tensor, global_batch_size) -> tf.Tensor:
    """Binary cross-entropy of cumulative sigmoid outputs, scalar share of the global mean.

    logits, targets float32 [B, K, C-1]; the BCE is averaged over the K attributes and C-1 outputs
    of each example, summed over the local rows and divided by ``global_batch_size``.
    """
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits)
    return tf.reduce_sum(tf.reduce_mean(bce, axis=[1, 2])) / tf.cast(global_batch_size, tf.float32)


def ordinal_classes(cumulative: tf.Tensor) -> tf.Tensor:
    """int32 [B, K]: the ordinal class of cumulative targets (0/1) or logits (> 0 counts as 1)."""
    return tf.reduce_sum(tf.cast(cumulative > 0, tf.int32), axis=-1)


def ordinal_accuracy(logits: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Fraction of (example, attribute) pairs whose predicted class equals the target class.

    logits float32 [B, K, C-1] (a class is the number of positive logits), targets [B, K, C-1].
    """
    hit = tf.equal(ordinal_classes(logits), ordinal_classes(targets))
    return tf.reduce_mean(tf.cast(hit, tf.float32))
