"""What the Grad-CAM page's numbers say (close-up default, localization and randomization verdicts), what its
estimates cost, and when a model's answer for an image means something."""

from __future__ import annotations

import pytest
import torch

from resnet_core import ResNetConfig, build_model, get_preset
from resnet_core.data import SHAPES_CLASSES
from resnet_core.explain import AttributionError, RandomizationResult, Subject, explain_batch, randomization_steps
from resnet_core.explain.costs import localization_seconds, method_passes, randomization_seconds, timed
from resnet_core.explain.readings import best_example, randomization_readings, randomization_sentence
from resnet_core.explain.verdicts import chance_reading, localization_sentence

TINY = ResNetConfig(block="basic", stage_blocks=(1, 1), stage_widths=(8, 16), stem="cifar", stem_width=8,
                    shortcut="B", num_classes=3)


def test_best_example_is_the_most_confident_correct_answer():
    probs = torch.tensor([[0.57, 0.43, 0.0],   # right (class 0) but unsure
                          [0.05, 0.95, 0.0],   # confident and wrong (truly class 2)
                          [0.02, 0.90, 0.08],  # right (class 1), the surest right answer
                          [0.99, 0.01, 0.0]])  # the surest of all, but a photo: its class is unknown
    assert best_example(probs, [0, 2, 1, None]) == 2
    # None right: the most confident of all; nothing known: likewise.
    assert best_example(probs, [1, 0, 0, None]) == 3
    assert best_example(probs, [None] * 4) == 3
    with pytest.raises(AttributionError):
        best_example(probs, [0, 1])


def _loc_row(method, label, pointing, energy, fraction):
    n = len(pointing)
    return {"method": method, "label": label, "pointing_game": sum(pointing) / n, "energy_inside": sum(energy) / n,
            "mask_fraction": sum(fraction) / n, "n": n,
            "per_image": {"pointing_game": pointing, "energy_inside": energy, "mask_fraction": fraction}}


def test_localization_compares_with_chance_image_by_image_and_ranks_only_beyond_the_noise():
    fraction = [0.16] * 20
    rows = [_loc_row("gradcam", "Grad-CAM", [1.0] * 15 + [0.0] * 5, [0.5] * 20, fraction),
            _loc_row("guided_gradcam", "Guided Grad-CAM", [1.0] * 16 + [0.0] * 4, [0.6] * 20, fraction),
            _loc_row("saliency", "Saliency", [1.0] * 3 + [0.0] * 17, [0.2] * 20, fraction),
            _loc_row("uniform", "Uniform map", fraction, fraction, fraction)]
    by = {r["method"]: chance_reading(r) for r in rows}
    assert by["gradcam"].verdict == "far above chance" and by["gradcam"].times_chance == pytest.approx(0.75 / 0.16)
    assert by["saliency"].verdict == "not decided"  # 15% of hits against 16% chance: within the noise
    # sd = sqrt(0.75 * 0.25 * 20 / 19) = 0.444, t(0.975, 19) = 2.093: 2.093 * 0.444 / sqrt(20) = 0.208
    assert by["gradcam"].pointing_game.text(0, 100, "%") == "75 ± 21%"
    said = localization_sentence(rows, {"gradcam": "Grad-CAM", "guided_gradcam": "Guided Grad-CAM",
                                        "saliency": "Saliency"})
    assert "On these 20 held-out images" in said and "Uniform" not in said
    # 80% against 75% on 20 images is within the noise: not ranked; both beat Saliency beyond it.
    assert "Guided Grad-CAM points at the object more often than Saliency, beyond the noise" in said
    assert "Guided Grad-CAM and Grad-CAM (difference" in said and "are not ranked" in said
    one = localization_sentence([_loc_row("gradcam", "Grad-CAM", [1.0], [0.5], [0.16])], {"gradcam": "Grad-CAM"})
    assert "one image cannot decide it" in one and "far above" not in one


def test_randomization_readings_report_the_final_correlation_and_the_range():
    result = RandomizationResult(["original", "fc", "layer2.0", "stem"],
                                 {"gradcam": [1.0, 0.6, 0.1, 0.05], "guided_gradcam": [1.0, 0.9, 0.5, 0.42],
                                  "saliency": [1.0, 0.95, 0.9, 0.88]})
    by = {r.method: r for r in randomization_readings(result)}
    assert (by["gradcam"].final, by["gradcam"].low, by["gradcam"].high) == (0.05, 0.05, 0.6)
    assert by["gradcam"].verdict == "depends"
    assert by["guided_gradcam"].final == 0.42 and by["guided_gradcam"].verdict == "partly"
    assert by["saliency"].verdict == "barely" and by["saliency"].steps == 3


def test_one_images_randomization_says_what_its_map_did_and_decides_nothing():
    result = RandomizationResult(["original", "fc", "stem"],
                                 {"gradcam": [1.0, 0.6, 0.05], "saliency": [1.0, 0.9, 0.88]})
    said = randomization_sentence(randomization_readings(result))
    assert "**Grad-CAM** fell from 1 to 0.05" in said and "on this image the map changed with the weights." in said
    assert "on this image the map barely changed" in said and "One image cannot decide" in said
    assert "passes the check)" not in said and "fails" not in said
    photo = randomization_sentence(randomization_readings(result), own_data=False)
    assert photo.endswith("is not read from it.") and "changed" not in photo
    assert "**Saliency** fell from 1 to 0.88" in photo


def test_costs_scale_with_the_methods_work_and_the_cascade():
    assert method_passes("gradcam", 32, 32) == 1.0
    assert method_passes("guided_gradcam", 32, 32) == 2.0
    assert method_passes("integrated_gradients", 32, 32, {"n_steps": 16, "smoothgrad_samples": 4}) == 64
    assert method_passes("occlusion", 224, 224) > method_passes("gradcam", 224, 224)  # 7x7 forward passes
    assert localization_seconds(0.01, ["gradcam", "guided_gradcam"], 64, (32, 32)) == pytest.approx(1.92)
    model = build_model(TINY)
    steps = len(randomization_steps(model)) + 1  # the trained model's map too
    assert randomization_seconds(0.01, model, ["gradcam"], (20, 20)) == pytest.approx(0.01 * steps)
    value, seconds = timed(lambda: 42)
    assert value == 42 and seconds >= 0


def test_gradcam_says_its_native_map_size():
    torch.manual_seed(0)
    model = build_model(get_preset("resnet20").replace(stage_blocks=(1, 1, 1)))
    explanation = explain_batch(model, torch.randn(2, 3, 32, 32), "gradcam")
    assert explanation.native_size == (8, 8) and explanation.maps.shape == (2, 32, 32)
    assert explain_batch(model, torch.randn(1, 3, 32, 32), "gradcam", layer="layer1").native_size == (32, 32)
    assert explain_batch(model, torch.randn(1, 3, 32, 32), "saliency").native_size is None


def test_a_photo_means_something_only_to_a_model_of_photos():
    model = build_model(TINY)
    shapes = Subject(model, list(SHAPES_CLASSES), None, "k", "t", on_shapes=True, trained_on="Shapes")
    assert shapes.answer_meaningful(own_data=True) and not shapes.answer_meaningful(own_data=False)
    imagenet = Subject(model, [f"c{i}" for i in range(1000)], None, "k", "t", trained_on="ImageNet")
    assert imagenet.answer_meaningful(own_data=False)
    untrained = Subject(model, ["a", "b", "c"], None, "k", "t", trained=False)
    assert untrained.answer_meaningful(own_data=False)  # its page says its answers are noise anyway
