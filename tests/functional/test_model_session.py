"""ModelSession on a tiny real ONNX model: loading, validation, numbers, S3 download + cache."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from functions import env
from functions.errors import ModelArtifactError, ModelIntegrityError, ModelNotPinnedError
from functions.frames.manifest import (
    MANIFEST_FILENAME,
    MODEL_FILENAME,
    Manifest,
    read_manifest,
    sha256_file,
    write_manifest,
)
from functions.frames.model import ModelSession, available_cpus, resolve_threads
from tests.fixtures.tiny_model import COLOUR_LABELS, TINY_LABELS, tiny_model_proto, write_tiny_model


def solid(colours) -> np.ndarray:
    images = np.zeros((len(colours), 224, 224, 3), dtype=np.uint8)
    for index, colour in enumerate(colours):
        images[index] = colour
    return images


def test_open_reads_manifest_and_sha(tiny_model, tiny_model_dir):
    assert tiny_model.labels == TINY_LABELS
    assert tiny_model.sha256 == sha256_file(tiny_model_dir / MODEL_FILENAME)
    assert tiny_model.model_path == tiny_model_dir / MODEL_FILENAME
    assert tiny_model.threads == 1


def test_predict_numbers(tiny_model, tiny_model_dir):
    colours = list(COLOUR_LABELS)
    probabilities, features = tiny_model.predict(solid(colours))
    assert probabilities.dtype == np.float32 and probabilities.shape == (4, 3)
    assert features.dtype == np.float32 and features.shape == (4, 2048)
    # softmax(10 * one-hot): e^10 / (e^10 + 2) for the colour's own label.
    top = np.exp(10.0) / (np.exp(10.0) + 2.0)
    np.testing.assert_allclose(probabilities[0], [top, (1 - top) / 2, (1 - top) / 2], rtol=1e-5)
    np.testing.assert_allclose(probabilities[3], [1 / 3, 1 / 3, 1 / 3], rtol=1e-5)
    weights = numpy_helper.to_array(onnx.load(tiny_model_dir / MODEL_FILENAME).graph.initializer[0])
    means = np.array(colours, dtype=np.float32)
    np.testing.assert_allclose(features, means @ weights, rtol=1e-5, atol=1e-3)


def test_non_contiguous_input_gives_the_same_answer(tiny_model):
    images = solid([(255, 0, 0), (0, 0, 255)])
    flipped = images[:, :, ::-1, :]  # a view, not C-contiguous
    assert not flipped.flags.c_contiguous
    np.testing.assert_array_equal(tiny_model.predict(flipped)[0], tiny_model.predict(images)[0])


@pytest.mark.parametrize(
    "images",
    [
        np.zeros((1, 224, 224, 3), dtype=np.float32),
        np.zeros((1, 224, 224), dtype=np.uint8),
        np.zeros((1, 100, 224, 3), dtype=np.uint8),
    ],
)
def test_wrong_input_is_refused(tiny_model, images):
    with pytest.raises(ValueError, match="uint8"):
        tiny_model.predict(images)


def test_sha256_mismatch_is_refused_at_load(tampered_model_dir):
    with pytest.raises(ModelIntegrityError, match="does not match"):
        ModelSession.open(str(tampered_model_dir), threads=1)


def test_a_model_other_than_the_pinned_one_is_refused_whatever_its_manifest(tiny_model_dir):
    sha = read_manifest(tiny_model_dir).model_sha256
    assert ModelSession.open(str(tiny_model_dir), threads=1, pinned_sha256=sha.upper()).sha256 == sha
    # The manifest matches model.onnx (a consistent artifact), but it is not the pinned model.
    with pytest.raises(ModelNotPinnedError, match="pins " + "0" * 64):
        ModelSession.open(str(tiny_model_dir), threads=1, pinned_sha256="0" * 64)


def test_model_with_wrong_output_names_is_refused(tmp_path):
    proto = tiny_model_proto()
    proto.graph.output[0].name = "probs"
    proto.graph.node[-1].output[0] = "probs"
    onnx.save(proto, tmp_path / MODEL_FILENAME)
    write_tiny_manifest(tmp_path)
    with pytest.raises(ModelArtifactError, match="output 'probabilities' is missing"):
        ModelSession.open(str(tmp_path), threads=1)


def test_model_with_fewer_labels_than_manifest_is_refused(tmp_path):
    onnx.save(tiny_model_proto(), tmp_path / MODEL_FILENAME)
    write_tiny_manifest(tmp_path, labels=["bus", "car", "empty", "truck"])
    with pytest.raises(ModelArtifactError, match="probabilities"):
        ModelSession.open(str(tmp_path), threads=1)


def write_tiny_manifest(model_dir, labels=None):
    labels = labels or TINY_LABELS
    write_manifest(
        model_dir,
        Manifest(
            labels=labels,
            task="multiclass",
            thresholds={label: 0.5 for label in labels},
            backbone="tiny",
            weights="none",
            precision="fp32",
            model_sha256=sha256_file(model_dir / MODEL_FILENAME),
            model_version="tiny-x",
            created_at="2026-11-22T00:00:00+00:00",
        ),
    )


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ModelArtifactError, match="not a directory"):
        ModelSession.open(str(tmp_path / "nowhere"))


def test_threads_default_to_the_cpus_of_this_process(monkeypatch):
    monkeypatch.delenv(env.ONNX_THREADS, raising=False)
    assert resolve_threads() == available_cpus() == len(os.sched_getaffinity(0))
    assert resolve_threads(5) == 5
    # The environment is read once, by Settings (functions.settings), never here.
    monkeypatch.setenv(env.ONNX_THREADS, str(available_cpus() + 3))
    assert resolve_threads() == available_cpus()


def test_session_options(tiny_model):
    options = tiny_model.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.inter_op_num_threads == 1
    assert str(options.graph_optimization_level).endswith("ORT_ENABLE_ALL")
    assert str(options.execution_mode).endswith("ORT_SEQUENTIAL")


def test_s3_model_is_downloaded_once_and_cached(s3_client, frames_bucket, tmp_path):
    source = write_tiny_model(tmp_path / "source")
    for name in (MODEL_FILENAME, MANIFEST_FILENAME):
        s3_client.upload_file(str(source / name), frames_bucket, f"models/tiny/{name}")
    uri = f"s3://{frames_bucket}/models/tiny/"
    cache = tmp_path / "cache"

    first = ModelSession.open(uri, s3_client=s3_client, cache_dir=cache, threads=1)
    assert first.sha256 == sha256_file(source / MODEL_FILENAME)
    (cached_dir,) = cache.iterdir()
    assert sorted(p.name for p in cached_dir.iterdir()) == [MANIFEST_FILENAME, MODEL_FILENAME]

    # Gone from S3: the second open (a warm container) must not need it.
    s3_client.delete_objects(
        Bucket=frames_bucket,
        Delete={"Objects": [{"Key": f"models/tiny/{n}"} for n in (MODEL_FILENAME, MANIFEST_FILENAME)]},
    )
    second = ModelSession.open(uri, s3_client=s3_client, cache_dir=cache, threads=1)
    assert second.sha256 == first.sha256


def test_missing_s3_model_is_a_clear_error(s3_client, frames_bucket, tmp_path):
    uri = f"s3://{frames_bucket}/models/absent/"
    with pytest.raises(ModelArtifactError, match=f"s3://{frames_bucket}/models/absent/model.onnx"):
        ModelSession.open(uri, s3_client=s3_client, cache_dir=tmp_path)
    # Nothing half-written is left to look like a model.
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_int8_kernel_family_mismatch_is_a_cold_start_warning(tiny_model, caplog):
    import dataclasses

    from functions.cpu import int8_kernel_family
    from functions.wiring import warn_if_int8_kernels_differ

    here = int8_kernel_family()
    other = "avx2" if here != "avx2" else "asimddot"
    as_int8 = dataclasses.replace(
        tiny_model, manifest=dataclasses.replace(tiny_model.manifest, precision="int8", int8_kernels=other)
    )
    warning = warn_if_int8_kernels_differ(as_int8)
    assert warning is not None and other in warning and here in warning
    assert any(record.getMessage() == warning for record in caplog.records)

    same = dataclasses.replace(
        tiny_model, manifest=dataclasses.replace(tiny_model.manifest, precision="int8", int8_kernels=here)
    )
    assert warn_if_int8_kernels_differ(same) is None
    assert warn_if_int8_kernels_differ(tiny_model) is None  # fp32: nothing to compare
