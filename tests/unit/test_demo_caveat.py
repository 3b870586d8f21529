"""The demo's on-screen caveat says what the model's manifest says about its backbone."""

from __future__ import annotations

from infra.demo.model import explain_weights


def test_random_backbone_without_fine_tuning():
    text = explain_weights("none")
    assert "RANDOMLY INITIALISED" in text and "fine-tun" not in text


def test_random_backbone_fine_tuning_tried_but_not_shipped():
    decision = "not shipped, it does not pay: cross-fitted balanced accuracy 0.480 vs frozen 0.520"
    text = explain_weights("none", {"shipped": False, "from_stage": "conv5", "decision": decision})
    assert "RANDOMLY INITIALISED" in text
    assert f"Fine-tuning was tried and {decision}." in text


def test_random_backbone_fine_tuned_and_shipped():
    decision = "shipped, it pays: cross-fitted balanced accuracy 0.910 vs frozen 0.520"
    text = explain_weights("none", {"shipped": True, "from_stage": "conv5", "decision": decision})
    assert "Its last stage (from conv5) was fine-tuned on the demo's frames: " + decision in text


def test_imagenet_backbone_needs_no_caveat_unless_fine_tuned():
    assert explain_weights("imagenet") is None
    text = explain_weights(
        "imagenet", {"shipped": True, "from_stage": "conv4", "decision": "shipped, it pays"}
    )
    assert text.startswith("Its last stages (from conv4) were fine-tuned")
