"""Recipe values against SPEC.md, and the optimiser they build."""

import os

import keras
import numpy as np
import pytest

from keras_mvf.training import optimization, recipes

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "SPEC.md")

# Sentences of SPEC.md ("Recipes") and the recipe values they fix.
FACTS = {
    "SGD momentum 0.9 (nesterov in the release), weight decay 1e-4": {
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 1e-4,
    },
    "lr 0.01 per 8 clips of batch (linear scaling)": {"base_lr": 0.01},
    "gradient clipping at global norm 40, dropout 0.5": {"clip_norm": 40.0, "dropout": 0.5},
}
KINETICS = {
    "/10 at epochs 90 and 130 of 150": {"lr_steps": (90, 130), "epochs": 150},
    "dense sampling": {"sampling": "dense"},
    "alpha = 1/8 for Kinetics": {"alpha": 0.125},
}
SOMETHING = {
    "TSN uniform segment sampling, alpha = 1/2, 50 epochs, /10 at 30, 40,\n  45": {
        "sampling": "uniform",
        "alpha": 0.5,
        "epochs": 50,
        "lr_steps": (30, 40, 45),
    },
}
FINE_TUNING = {"lr 0.01, 25 epochs": {"base_lr": 0.01, "epochs": 25}}
EXPECTED = {
    "kinetics400": {**FACTS, **KINETICS},
    "sthv1": {**FACTS, **SOMETHING},
    "sthv2": {**FACTS, **SOMETHING},
    "ucf101": {**FACTS, **FINE_TUNING},
    "hmdb51": {**FACTS, **FINE_TUNING},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recipe_matches_spec(name):
    recipe = recipes.get_recipe(name)
    for values in EXPECTED[name].values():
        for key, value in values.items():
            assert recipe[key] == value, (name, key)


@pytest.mark.skipif(not os.path.exists(SPEC), reason="SPEC.md lives beside the repository")
def test_quoted_facts_are_in_spec():
    with open(SPEC) as file:
        text = " ".join(file.read().split())
    quotes = {quote for facts in EXPECTED.values() for quote in facts}
    for quote in quotes:
        assert " ".join(quote.split()) in text, quote


def test_test_views_match_spec():
    assert recipes.TEST_VIEWS["kinetics400"] == (10, 3)
    assert recipes.TEST_VIEWS["sthv2"] == (2, 3)


def test_unknown_recipe():
    with pytest.raises(ValueError, match="name='kinetics'"):
        recipes.get_recipe("kinetics")


def test_schedule_warmup_and_steps():
    schedule = optimization.WarmupStepDecay(
        0.1, boundaries=[100, 200], warmup_steps=10, warmup_start=0.01
    )
    rates = [float(schedule(step)) for step in (0, 5, 10, 99, 100, 199, 200, 1000)]
    np.testing.assert_allclose(
        rates, [0.001, 0.0505, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-5
    )
    restored = optimization.WarmupStepDecay.from_config(schedule.get_config())
    assert float(restored(150)) == pytest.approx(0.01)


def test_linear_scaling_and_clipping():
    optimizer = optimization.make_optimizer(
        64, steps_per_epoch=10, base_lr=0.01, lr_steps=(2,), warmup_epochs=0
    )
    assert float(optimizer.learning_rate) == pytest.approx(0.08)
    assert optimizer.global_clipnorm == 40.0
    assert optimizer.nesterov and optimizer.momentum == 0.9
    # The schedule counts optimiser steps; the decay comes after 2 epochs of 10.
    optimizer.iterations.assign(20)
    assert float(optimizer.learning_rate) == pytest.approx(0.008)


def test_weight_decay_is_pytorch_coupled_l2():
    """One SGD step with momentum equals PyTorch's: w -= lr * (g + wd * w)."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    w0 = [v.numpy() for v in model.trainable_variables]
    optimization.add_weight_decay(model, 0.1)
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9), loss="mse")
    x, y = np.ones((4, 3), "float32"), np.zeros((4, 2), "float32")
    model.train_on_batch(x, y)
    kernel, bias = w0
    out = x @ kernel + bias
    grad_out = 2 * out / out.size
    grads = [x.T @ grad_out, grad_out.sum(0)]
    for variable, w, g in zip(model.trainable_variables, w0, grads, strict=True):
        np.testing.assert_allclose(variable.numpy(), w - 0.5 * (g + 0.1 * w), rtol=1e-5)


def test_negative_weight_decay():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="weight_decay=-1"):
        optimization.add_weight_decay(model, -1)
