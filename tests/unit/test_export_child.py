"""The heavy export steps run in child processes (export.child): a failure is one clear error."""

from __future__ import annotations

import os

import numpy as np
import pytest

from export.backbone import _no_graph_copies, export_backbone_in_child
from export.quantize import quantize_backbone_in_child
from functions.errors import ConfigurationError


def test_a_failing_child_is_one_error_naming_the_cause(tmp_path):
    frames = np.zeros((1, 224, 224, 3), dtype=np.uint8)
    with pytest.raises(ConfigurationError, match=r"failed in its child process \(exit 2\).*does not exist"):
        quantize_backbone_in_child(tmp_path / "missing.onnx", tmp_path / "int8.onnx", frames)
    assert not (tmp_path / "int8.onnx").exists()


def test_an_unusable_weights_file_is_refused_before_any_child(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        export_backbone_in_child(str(tmp_path / "missing.h5"), tmp_path / "backbone.onnx")


def test_tf2onnx_runs_without_graph_copies_only_inside_the_block(monkeypatch):
    monkeypatch.delenv("TF2ONNX_CATCH_ERRORS", raising=False)
    with _no_graph_copies():
        assert os.environ["TF2ONNX_CATCH_ERRORS"] == "FALSE"
    assert "TF2ONNX_CATCH_ERRORS" not in os.environ
    monkeypatch.setenv("TF2ONNX_CATCH_ERRORS", "TRUE")
    with _no_graph_copies():
        assert os.environ["TF2ONNX_CATCH_ERRORS"] == "FALSE"
    assert os.environ["TF2ONNX_CATCH_ERRORS"] == "TRUE"
