"""The paper's training recipes as small named sets of `train()` keyword arguments.

Sources: MVFNet paper section 4.2 and the released configurations, summarised in
docs/architecture.md. Values marked "ours" are not stated there and follow common
practice for the same backbones; every value can be overridden by a keyword of
`train()` or a flag of `keras-mvf train`.
"""

_OPTIMISER = {
    "base_lr": 0.01,  # per 8 clips; scaled linearly with the global batch
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 1e-4,  # coupled L2, as PyTorch's SGD applies it (see `add_weight_decay`)
    "clip_norm": 40.0,
    "dropout": 0.5,
}

RECIPES = {
    "kinetics400": {
        **_OPTIMISER,
        "sampling": "dense",
        "num_frames": 8,
        "frame_interval": 8,
        "alpha": 0.125,
        "epochs": 150,
        "lr_steps": (90, 130),
        # The release warms up linearly from 1% of the rate for 25070 iterations,
        # about 10 epochs at its batch of 96 clips.
        "warmup_epochs": 10,
        "warmup_start": 0.01,
        "flip": True,
        "crop_size": 224,
        "short_side": 256,
    },
    "sthv1": {
        **_OPTIMISER,
        "sampling": "uniform",
        "num_frames": 8,
        "alpha": 0.5,
        "epochs": 50,
        "lr_steps": (30, 40, 45),
        "warmup_epochs": 1,  # ours
        "warmup_start": 0.01,
        # Left/right flips change the meaning of some classes ("pushing something
        # from left to right"): off unless a `label_swap` map is given.
        "flip": False,
        "crop_size": 224,
        "short_side": 256,
    },
    "ucf101": {
        **_OPTIMISER,
        "sampling": "dense",
        "num_frames": 8,
        "frame_interval": 8,
        "alpha": 0.125,
        "epochs": 25,
        "lr_steps": (10, 20),  # ours
        "warmup_epochs": 0,
        "warmup_start": 0.01,
        "flip": True,
        "crop_size": 224,
        "short_side": 256,
    },
}
RECIPES["sthv2"] = dict(RECIPES["sthv1"])
RECIPES["hmdb51"] = dict(RECIPES["ucf101"])

# Views of the accurate test protocol: (clips per video, spatial crops per clip).
TEST_VIEWS = {
    "kinetics400": (10, 3),
    "sthv1": (2, 3),
    "sthv2": (2, 3),
    "ucf101": (10, 3),
    "hmdb51": (10, 3),
}


def get_recipe(name):
    """Returns a copy of the keyword arguments of recipe `name`."""
    if name not in RECIPES:
        raise ValueError(
            f"Unknown recipe; choose one of {sorted(RECIPES)}. Received: name={name!r}"
        )
    return dict(RECIPES[name])
