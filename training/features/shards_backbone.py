"""The backbone of a model trained from feature shards: the model that wrote them, and its proof.

Feature shards (functions/archive/shards.py) are keyed by the sha256 of the backbone whose ``features``
output they hold (``manifest.backbone_sha256`` of the model the featurize job ran). Training a
new head on them ships that same backbone, so ``--backbone-from`` names that model (its
``s3://.../models/<version>/`` or a local model directory): its manifest must record the shards'
backbone sha256, and its backbone is the subgraph ``image -> features`` of its model.onnx (for
a merged camsort model, everything but the ``trees/`` head; any contract model works).

There is no Keras model to compare with here, so the proof is against the shards themselves:
``check_backbone`` downloads a seeded sample of the training frames, loads them with the
function's loader, runs the extracted backbone with the function's onnxruntime settings and
compares its features with the stored float16 ones (``export.parity.check_stored_features``).
It runs before cross-validation: a wrong backbone is refused in seconds, not after the CV.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURES_OUTPUT, INPUT_NAME, Manifest
from training.features.shards import ShardSet


@dataclass(frozen=True)
class ShardBackbone:
    source: str  # what --backbone-from named
    manifest: Manifest  # the source model's (precision, weights, backbone name, tools)
    model: Any  # onnx.ModelProto: image -> features

    @property
    def sha256(self) -> str:
        return self.manifest.backbone_sha256


def open_backbone(uri: str | None, shards: ShardSet, *, s3_client: Any) -> ShardBackbone:
    """The source model's backbone, refused unless its manifest records the shards' backbone sha256."""
    wrote = ", ".join(shards.model_versions) or "unknown"
    if not uri:
        raise ConfigurationError(
            f"--features s3://.../{shards.backbone_sha256}/: training ships the backbone that wrote the shards; "
            f"give --backbone-from with that model (the shards were written by model version(s) {wrote}, "
            "e.g. s3://<bucket>/models/<version>/ or a local model directory)"
        )
    backbone = model_backbone(uri, s3_client=s3_client)
    manifest = backbone.manifest
    if manifest.backbone_sha256 != shards.backbone_sha256:
        raise ConfigurationError(
            f"{uri}: its manifest records backbone_sha256 {manifest.backbone_sha256 or '(none)'}, but the "
            f"feature shards are for backbone {shards.backbone_sha256} (written by model version(s) {wrote}): "
            "give --backbone-from the model that wrote the shards, or featurize the training set again with "
            f"this model (`camsort backfill --mode featurize --model-version {manifest.model_version}`)"
        )
    return backbone


def model_backbone(uri: str, *, s3_client: Any = None) -> ShardBackbone:
    """The ``image -> features`` subgraph of the model at ``uri`` (a model directory or s3://), checked
    against its manifest's sha256 first."""
    import onnx
    import onnx.utils

    from functions.frames.manifest import load_verified
    from functions.frames.model import fetch_model

    # A 100 MB download per run, not kept: the model cache is the function's business.
    with tempfile.TemporaryDirectory(prefix="camsort-shards-backbone-") as cache:
        model_path, manifest = load_verified(fetch_model(uri, s3_client=s3_client, cache_dir=cache))
        merged = onnx.load(str(model_path))
    backbone = onnx.utils.Extractor(merged).extract_model([INPUT_NAME], [FEATURES_OUTPUT])
    return ShardBackbone(source=uri, manifest=manifest, model=backbone)


def export_on_backbone(backbone: ShardBackbone, fitted: Any, out_dir: Any, parity_frames: np.ndarray) -> dict:
    """model.onnx = ``backbone`` + the fitted head's trees, and the head half of the parity gate."""
    import onnx

    from export.merge import merge_backbone_and_trees
    from export.parity import check_tree_parity
    from functions.frames.manifest import MODEL_FILENAME

    onnx.save(merge_backbone_and_trees(backbone.model, fitted.trees), str(out_dir / MODEL_FILENAME))
    return check_tree_parity(out_dir / MODEL_FILENAME, fitted.classifier, parity_frames)


def borrowed_backbone_fields(backbone: ShardBackbone) -> dict[str, Any]:
    """What a manifest records of a backbone taken, bytes and all, from another model: that model's
    backbone, weights, precision, quantization record and the int8 kernel family its guard ran on."""
    source = backbone.manifest
    return {
        "backbone": source.backbone,
        "weights": source.weights,
        "precision": source.precision,
        "backbone_sha256": backbone.sha256,
        "quantization": {
            **source.quantization,
            "backbone_from": f"{backbone.source} (model {source.model_version})",
        },
        "int8_kernels": source.int8_kernels,
    }


def run_backbone(backbone: ShardBackbone, pixels: np.ndarray, *, threads: int | None = None) -> np.ndarray:
    """float32 [N, 2048] features with the function's onnxruntime settings."""
    import onnxruntime as ort

    from functions.frames.model import resolve_threads, session_options

    session = ort.InferenceSession(
        backbone.model.SerializeToString(),
        sess_options=session_options(resolve_threads(threads)),
        providers=["CPUExecutionProvider"],
    )
    return np.asarray(session.run([FEATURES_OUTPUT], {INPUT_NAME: pixels})[0], dtype=np.float32)


@dataclass(frozen=True)
class ParitySample:
    indices: np.ndarray  # into the shard set
    pixels: np.ndarray  # uint8 [n, 224, 224, 3], from load_image
    changed: list[str]  # sampled frames deleted, or whose content is no longer the one featurized


def parity_sample(
    shards: ShardSet, *, s3_client: Any, size: int, seed: int, max_workers: int = 8
) -> ParitySample:
    """A seeded sample of the training frames, downloaded and loaded as the function does.

    A frame replaced since it was featurized (its bytes hash to another sha256) has no shard to
    compare with: it is left out and named. A frame that no longer loads is a DatasetError.
    """
    from export.parity import ParityError
    from training.features.shards import download_frames

    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(len(shards.uris), size=min(size, len(shards.uris)), replace=False))
    loaded = download_frames([shards.uris[i] for i in indices], s3_client=s3_client, max_workers=max_workers)
    keep = [i for i in indices if loaded.get(shards.uris[i], ("",))[0] == shards.sha256s[i]]
    changed = [shards.uris[i] for i in indices if i not in keep]
    if not keep:
        raise ParityError(
            f"none of the {len(indices)} sampled training frames still has the content that was featurized "
            f"(e.g. {changed[:3]}): featurize the training set again before training from its shards"
        )
    return ParitySample(
        indices=np.array(keep, dtype=np.int64),
        pixels=np.stack([loaded[shards.uris[i]][1] for i in keep]),
        changed=changed,
    )


def check_backbone(backbone: ShardBackbone, shards: ShardSet, sample: ParitySample) -> dict[str, Any]:
    """The backbone's features on the sample vs the shards' (raises ``ParityError``)."""
    from export.parity import check_stored_features

    features = run_backbone(backbone, sample.pixels)
    figures = check_stored_features(
        f"{backbone.source} (backbone {backbone.sha256[:12]}…)",
        features,
        shards.features16[sample.indices],
        sources=[shards.uris[i] for i in sample.indices],
    )
    figures["images"] = (
        f"{len(sample.indices)} training frames (seeded sample), loaded by the function's loader"
    )
    figures["changed_since_featurized"] = sample.changed
    return figures
