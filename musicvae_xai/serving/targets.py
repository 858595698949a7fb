"""``connect(target, model)``: the right client for a target string.

* an existing directory (an export version, or an export base) -> ``LocalModel``
* ``http://host:port`` or ``https://...`` -> ``RestClient``
* ``host:port`` or ``grpc://host:port`` -> ``GrpcClient``
"""

from __future__ import annotations

import os
from typing import Optional

from musicvae_xai.serving.base import ModelClient


def connect(target: str, model_name: Optional[str] = None, version: Optional[int] = None, *,
            timeout: float = 30.0, retries: int = 3, request_format: str = "row") -> ModelClient:
    """A client for ``target``; ``model_name`` is required for a server."""
    if os.path.isdir(target):
        from musicvae_xai.serving.local import LocalModel, resolve_export_dir
        path = target if version is None else os.path.join(target, str(int(version)))
        if version is not None and not os.path.isdir(path):
            path = target if os.path.basename(os.path.normpath(target)) == str(int(version)) else path
        return LocalModel(resolve_export_dir(path))
    if not model_name:
        raise ValueError(f"--model is required for the server {target!r}")
    if target.startswith(("http://", "https://")):
        from musicvae_xai.serving.rest import RestClient
        return RestClient(target, model_name, version, timeout=timeout, retries=retries,
                          request_format=request_format)
    if ":" not in target.replace("grpc://", ""):
        raise ValueError(f"target {target!r} is neither an export directory, an http(s):// URL nor host:port")
    from musicvae_xai.serving.grpc_client import GrpcClient
    return GrpcClient(target, model_name, version, timeout=timeout, retries=retries)
