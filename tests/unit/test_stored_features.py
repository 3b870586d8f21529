"""export.parity.check_stored_features: a backbone's float32 features vs float16 feature shards."""

from __future__ import annotations

import numpy as np
import pytest

from export.parity import ParityError, check_stored_features


def features(seed: int = 0) -> np.ndarray:
    # ReLU-pooled features: non-negative, a few large, many near zero.
    rng = np.random.default_rng(seed)
    return (rng.exponential(1.0, (4, 2048)) * rng.uniform(0.5, 8.0, (4, 1))).astype(np.float32)


def test_float16_rounding_passes_and_is_measured():
    here = features()
    figures = check_stored_features("m", here, here.astype(np.float16))
    assert figures["frames_outside_tolerance"] == 0 and figures["n_images"] == 4
    assert 2.4e-4 < figures["features_max_rel_diff"] <= 2**-11  # round to nearest: half an ulp at most


def test_noise_where_terms_cancel_is_inside_the_frame_scale_tolerance():
    here = features()
    here[:, 0] = 3e-3  # a sum of large terms that cancelled to 3e-3 here ...
    stored = here.astype(np.float16)
    stored[:, 0] = np.float16(1e-6)  # ... and to ~0 on another CPU: far off relatively, tiny vs the frame
    assert check_stored_features("m", here, stored)["features_max_rel_diff"] > 100


def test_a_backbone_one_percent_off_is_refused_naming_the_frames():
    here = features()
    stored = (here * 1.01).astype(np.float16)
    stored[1] = here[1].astype(np.float16)  # one frame agrees
    uris = [f"s3://b/training/bus/{i}.jpg" for i in range(4)]
    with pytest.raises(ParityError, match=r"on 3 of 4 frames \(e.g. s3://b/training/bus/0.jpg, "):
        check_stored_features("model v1", here, stored, sources=uris)


def test_other_shapes_are_refused():
    with pytest.raises(ParityError, match="not the one that wrote the shards"):
        check_stored_features("m", features()[:, :1000], features().astype(np.float16))
