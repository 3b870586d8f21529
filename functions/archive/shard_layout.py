"""Where feature shards live and how one is encoded (functions/shards.py writes them; compaction
and training read them). Light on purpose: numpy only, so the archive artifact can import it."""

from __future__ import annotations

import io

import numpy as np

FEATURES_DTYPE = np.float16
KEYS_FOLDER = "keys"


def features_key(prefix: str, backbone_sha256: str, content_sha256: str) -> str:
    return f"{prefix}{backbone_sha256}/{content_sha256[:2]}/{content_sha256}.npy"


def pointer_key(prefix: str, backbone_sha256: str, bucket: str, key: str) -> str:
    return f"{prefix}{backbone_sha256}/{KEYS_FOLDER}/{bucket}/{key}.json"


def encode_features(features: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(features, dtype=FEATURES_DTYPE), allow_pickle=False)
    return buffer.getvalue()


def decode_features(data: bytes, source: str) -> np.ndarray:
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype != FEATURES_DTYPE or array.ndim != 1:
        raise ValueError(f"{source}: expected float16 [n] features, got {array.dtype} {list(array.shape)}")
    return array
