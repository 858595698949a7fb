"""``GrpcClient``: TensorFlow Serving's gRPC ``PredictionService`` (``tensorflow-serving-api``).

``Predict`` carries a ``PredictRequest`` (model spec: name, optional version, signature name; inputs
as ``TensorProto``s) and answers with ``PredictResponse.outputs``; ``GetModelMetadata`` with
``metadata_field=["signature_def"]`` answers with a ``SignatureDefMap`` packed in an ``Any``.
Every call has one deadline (``timeout`` seconds) shared by its RPCs: the metadata fetch it may need
first and each retry get only what is left of it (gRPC's per-RPC deadline is set to the remainder), so
retries and slow answers never stretch a call past ``timeout``. ``UNAVAILABLE`` is retried a bounded
number of times; every other status is raised as ``ServingError`` with the server's message and the
status code name.
"""

from __future__ import annotations

from typing import Optional

import grpc
import numpy as np

from musicvae_xai.serving import signatures as sigs
from musicvae_xai.serving.base import DeadlineExceeded, ModelClient, clean_message, with_retries

#: Large enough for a batch-256 ``decode`` (probabilities 256 x 24 x V float32).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024


class GrpcClient(ModelClient):
    """Client of ``target`` (``host:port``, e.g. ``localhost:8500``) for ``model_name``."""

    def __init__(self, target: str, model_name: str, version: Optional[int] = None, timeout: float = 30.0,
                 retries: int = 3, validate: bool = True, channel: Optional[grpc.Channel] = None):
        super().__init__(validate)
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        if target.startswith("grpc://"):
            target = target[len("grpc://"):]
        self.target, self.model_name, self.version = target, model_name, version
        self.timeout, self.retries = float(timeout), int(retries)
        self.server = f"gRPC server {target}"
        self._channel = channel or grpc.insecure_channel(target, options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)

    def _model_spec(self, signature: str = ""):
        from tensorflow_serving.apis import model_pb2

        spec = model_pb2.ModelSpec(name=self.model_name, signature_name=signature)
        if self.version is not None:
            spec.version.value = int(self.version)
        return spec

    def _call(self, method, request, signature: Optional[str]):
        attempts = [0]

        def once():
            attempts[0] += 1
            remaining = deadline.remaining()
            return method(request, timeout=None if remaining is None else max(remaining, 1e-3))

        def unavailable(e):
            return isinstance(e, grpc.RpcError) and e.code() == grpc.StatusCode.UNAVAILABLE

        def late():
            return self.error(f"no answer within {self.timeout:g} s (the timeout bounds the whole call, retries "
                              f"included; {attempts[0]} attempt{'s' if attempts[0] != 1 else ''})", signature,
                              code=grpc.StatusCode.DEADLINE_EXCEEDED.name, unavailable=True)

        with self.call_deadline() as deadline:
            try:
                return with_retries(once, unavailable, self.retries, deadline=deadline)
            except DeadlineExceeded:
                raise late() from None
            except grpc.RpcError as e:
                code = e.code()
                details = clean_message(e.details() or "")
                if code == grpc.StatusCode.DEADLINE_EXCEEDED or (code == grpc.StatusCode.UNAVAILABLE
                                                                 and deadline.expired()):
                    raise late() from None
                if code == grpc.StatusCode.UNAVAILABLE:
                    raise self.error(f"cannot reach the server after {attempts[0]} attempts: {details}",
                                     signature, code=code.name, unavailable=True) from None
                raise self.error(f"{code.name}: {details}", signature, code=code.name) from None

    def _fetch_metadata(self) -> dict:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(model_spec=self._model_spec(),
                                                                 metadata_field=["signature_def"])
        response = self._call(self._stub.GetModelMetadata, request, None)
        defs = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(defs):
            raise self.error("GetModelMetadata answered without a SignatureDefMap")
        version = response.model_spec.version.value if response.model_spec.HasField("version") else None
        return {"model": self.model_name, "version": version,
                "signatures": sigs.summarize_signature_defs(
                    json_format.MessageToDict(defs, preserving_proto_field_name=True))}

    def _predict(self, signature: str, inputs: dict) -> dict:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest(model_spec=self._model_spec(signature))
        for key, value in inputs.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        response = self._call(self._stub.Predict, request, signature)
        return {k: np.asarray(tf.make_ndarray(v)) for k, v in response.outputs.items()}

    def close(self) -> None:
        self._channel.close()
