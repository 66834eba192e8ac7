"""Mask-aware pooling over the time axis."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="nlpkit")
class MaskedPooling(keras.layers.Layer):
    """Pools a ``(batch, time, features)`` sequence over time, ignoring masked steps.

    Keras' global pooling layers either ignore masks (max) or divide by the padded length
    in some versions; here padding never leaks into the result, and a sequence with no
    valid step pools to zeros instead of ``-inf`` or ``nan``.

    Args:
        mode: "mean", "max" or "max_mean" (the two concatenated). Default "max_mean".

    Example:
        >>> x = np.array([[[1.0], [3.0], [100.0]]], "float32")
        >>> MaskedPooling("mean")(x, mask=np.array([[True, True, False]])).numpy()
        array([[2.]], dtype=float32)
    """

    MODES = ("mean", "max", "max_mean")

    def __init__(self, mode="max_mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"`mode` must be one of {self.MODES}. Received: mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        weights = ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
        pooled = []
        if self.mode in ("max", "max_mean"):
            very_negative = ops.full_like(inputs, -1e9)
            maxed = ops.max(ops.where(weights > 0, inputs, very_negative), axis=1)
            has_any = ops.sum(weights, axis=1) > 0
            pooled.append(ops.where(has_any, maxed, ops.zeros_like(maxed)))
        if self.mode in ("mean", "max_mean"):
            total = ops.sum(inputs * weights, axis=1)
            count = ops.maximum(ops.sum(weights, axis=1), 1.0)
            pooled.append(total / count)
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        features = input_shape[-1] * (2 if self.mode == "max_mean" else 1)
        return (input_shape[0], features)

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config
