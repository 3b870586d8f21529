"""Drift per camera and day: the divergence math and the rows made from result items."""

from __future__ import annotations

import numpy as np
import pytest

from infra.ops.drift import drift_rows, jensen_shannon, mix, psi


def test_jensen_shannon_known_values():
    assert jensen_shannon(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)  # base 2
    # m = (0.75, 0.25): KL(p||m) = log2(4/3), KL(q||m) = (log2(2/3) + 1) / 2
    expected = (np.log2(4 / 3) + (np.log2(2 / 3) + 1) / 2) / 2
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(expected)
    assert expected == pytest.approx(0.311278, abs=1e-6)


def test_psi_known_value_and_floor():
    # (0.5 - 0.25) ln 2 + (0.5 - 0.75) ln(2/3)
    assert psi(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(0.274653, abs=1e-6)
    assert psi(np.array([0.3, 0.7]), np.array([0.3, 0.7])) == 0.0
    assert np.isfinite(psi(np.array([1.0, 0.0]), np.array([0.5, 0.5])))  # a zero share is floored


def test_mix_orders_and_normalises():
    np.testing.assert_allclose(mix({"car": 1, "bus": 3}, ["bus", "car", "empty"]), [0.75, 0.25, 0.0])
    np.testing.assert_array_equal(mix({}, ["bus"]), [0.0])


def item(camera, day, label=None, confidence=0.9, **extra):
    fields = {
        "camera_id": camera,
        "captured_at": f"{day}T10:00:00.000Z",
        "status": "ok",
        "confidence": confidence,
    }
    if label is not None:
        fields["label"] = label
    return fields | extra


def test_rows_per_camera_and_day_with_rates_and_divergence():
    prior = {"bus": 0.5, "car": 0.5}
    items = [
        item("cam-01", "2026-12-01", "bus", 0.8),
        item("cam-01", "2026-12-01", "car", 0.6),
        item("cam-01", "2026-12-01", "unknown", 0.4),
        item("cam-01", "2026-12-01", "unfamiliar", 0.99, distance=4.2),
        item("cam-01", "2026-12-02", "bus", 1.0),
        item("cam-02", "2026-12-01", labels=[], unfamiliar=True),  # a multi-label unfamiliar frame
        item("cam-02", "2026-12-01", labels=["bus", "car"], confidence=0.7),
        {"camera_id": "cam-01", "captured_at": "2026-12-01T11:00:00Z", "status": "rejected"},
        item(None, "2026-12-01", "bus"),  # an unexpected key: no camera, not counted
    ]
    rows = drift_rows(items, prior)
    assert [(r.camera, r.day, r.frames) for r in rows] == [
        ("cam-01", "2026-12-01", 4),
        ("cam-01", "2026-12-02", 1),
        ("cam-02", "2026-12-01", 2),
    ]
    first, second, third = rows
    assert (first.unknown_rate, first.unfamiliar_rate) == (0.25, 0.25)
    assert first.mean_confidence == pytest.approx(0.7)  # the labelled frames only: (0.8 + 0.6) / 2
    assert first.js == 0.0 and first.psi == 0.0  # bus 1, car 1: the prior's mix
    assert second.js == pytest.approx(jensen_shannon(np.array([1.0, 0.0]), np.array([0.5, 0.5])))
    assert third.counts == {"bus": 1, "car": 1} and third.unfamiliar_rate == 0.5 and third.js == 0.0


def test_without_a_prior_there_is_no_divergence():
    (row,) = drift_rows([item("cam-01", "2026-12-01", "bus")], None)
    assert row.js is None and row.psi is None and row.frames == 1
