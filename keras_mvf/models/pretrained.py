"""Pretrained weights into models: one loading path for every route, and preset directories.

Every route loads through `load_weights`: the factories' `weights=`,
`create_model`, `from_preset`, `train(weights=)` (`build_model`) and the
`--model` of `predict`, `evaluate`, `extract-features` and `export`
(`load_model`). A source is a release name (or `"kinetics400"`), a preset
directory, a `.pth`, a `.weights.h5` or a `.keras` file. Loading is strict:
every variable of the model, or a `ValueError` before any is set; only the
classifier is left as initialised, when the class count differs or the model
has none, and the one-line summary on stderr says so.
"""

import os
import re
import shutil
import sys

from keras_mvf.models import registry
from keras_mvf.utils import files
from keras_mvf.weights import convert, loading, preset_dir, presets, pth

# What a caller may change of a source's architecture: none of these changes a variable
# of the backbone (`name` changes nothing at all).
OVERRIDABLE = (
    "num_classes",
    "num_frames",
    "input_shape",
    "include_top",
    "pooling",
    "classifier_activation",
    "dropout",
)
# `weights="kinetics400"` picks the release for the model's depth and frame count.
DATASET_ALIASES = ("kinetics400",)
# ResNet block counts -> depth, for the releases (ResNet-50 and ResNet-101).
DEPTHS = {blocks: depth for depth, blocks in registry.RESNET_BLOCKS.items()}
ACCEPTED = (
    "None, 'kinetics400', a name from keras_mvf.list_weights(), a preset directory, a "
    "released .pth file or a Keras .weights.h5 or .keras file"
)


def release_name(weights, depth, num_frames):
    """The release `weights` means: "kinetics400" is the one for a ResNet of `depth` (50 or
    101, None for other block counts) and `num_frames`; anything else is returned as is."""
    if weights not in DATASET_ALIASES:
        return weights
    released = [
        name
        for name, (model, _) in registry.PRETRAINED.items()
        if depth is not None and model == f"mvfnet{depth}"
    ]
    if not released:
        raise ValueError(
            "Released checkpoints exist for MVFNet ResNet-50 and ResNet-101 only. "
            f"Received: weights={weights!r} for a model of another depth"
        )
    matches = [
        name for name in released if registry.PRETRAINED[name][1]["num_frames"] == num_frames
    ]
    if len(matches) != 1:
        raise ValueError(
            f"No Kinetics-400 release of MVFNet ResNet-{depth} for {num_frames} frames; the "
            f"releases are {released}. The weights fit any frame count: name one explicitly, "
            f"e.g. weights={released[0]!r}. Received: weights={weights!r}, "
            f"num_frames={num_frames}"
        )
    return matches[0]


def _frames_from_file_name(path):
    """`(frames, interval)` from a release file name such as `R50_8x8.pth`, or `(None, None)`."""
    match = re.search(r"_(\d+)x(\d+)", os.path.basename(os.fspath(path)))
    return (int(match.group(1)), int(match.group(2))) if match else (None, None)


def _inferred_model(inferred):
    """The registered model of the family and depth `infer_model_kwargs` found (others: 50)."""
    family = {"mvf": "mvfnet", "tsm": "tsm", None: "c2d"}[inferred["temporal_module"]]
    return f"{family}{DEPTHS.get(inferred['block_counts'], 50)}"


def convert_checkpoint(checkpoint, directory, model=None, num_frames=None, metadata=None, **kwargs):
    """Converts a released `.pth` checkpoint into a preset directory.

    Args:
        checkpoint: path of the `.pth` file.
        directory: the preset directory to write (replaced atomically).
        model: registered model name (`"mvfnet50"`, ...); None infers depth,
            alpha, MVF stages and classes from the checkpoint.
        num_frames: frames per clip of the preset's model (the weights fit
            any). Defaults to the file name's (`R50_8x8.pth`: 8), else 8.
        metadata: more facts for `metadata.json` (source URL, licence, ...).
        **kwargs: further constructor arguments (a release's, from the registry).

    Returns:
        The Keras model holding the converted weights. Its labels are the
        Kinetics-400 class names when it has 400 classes, as every release.
    """
    state = pth.read_state_dict(checkpoint)
    inferred = convert.infer_model_kwargs(state)  # checks the whole checkpoint before building
    frames, interval = _frames_from_file_name(checkpoint)
    num_frames = num_frames or kwargs.pop("num_frames", None) or frames or 8
    if model is None:
        model = _inferred_model(inferred)
        kwargs = {**inferred, **kwargs}
    kwargs = {"num_classes": inferred["num_classes"], "layout": "pytorch", **kwargs}
    network = registry.create_model(model, num_frames=num_frames, **kwargs)
    fresh = convert.load_state_dict(network, state)
    if fresh:
        raise ValueError(
            f"{checkpoint} is a 2D ImageNet backbone, not a video model: pass it as "
            "backbone_weights (layers it leaves as initialised: "
            f"{', '.join(fresh[:5])})."
        )
    labels = presets.kinetics400_classes() if inferred["num_classes"] == 400 else None
    facts = {
        "source": os.path.abspath(checkpoint),
        "sha256": presets.sha256_of(checkpoint),
        "frames": num_frames,
        "frame_interval": interval,
        "converter_version": convert.CONVERTER_VERSION,
        **(metadata or {}),
    }
    save_preset(network, directory, labels=labels, metadata=facts)
    return network


def convert_release(name, directory, num_frames=None):
    """Downloads release `name` and converts it into a preset directory; returns the model.

    `num_frames` sets the model's frames per clip; defaults to the release's.
    """
    if name not in registry.PRETRAINED:
        raise ValueError(
            f"{name!r} is not a released video model; choose one of {sorted(registry.PRETRAINED)}"
            + (
                " (it is an ImageNet backbone: pass it as backbone_weights)"
                if name in presets.PRESETS
                else ""
            )
            + f". Received: weights={name!r}"
        )
    info = presets.weights_info(name)
    model, kwargs = registry.PRETRAINED[name]
    kwargs = {**kwargs, "num_frames": num_frames or kwargs["num_frames"]}
    metadata = {
        "name": name,
        "description": info["description"],
        "source": info["url"],
        "license": info["license"],
        "frame_interval": info["frame_interval"],
        "accuracy": f"{info['top1']}% top-1 on {info['dataset']} (the authors' model zoo)",
    }
    checkpoint = presets.download_checkpoint(name)
    return convert_checkpoint(checkpoint, directory, model, metadata=metadata, **kwargs)


def release_preset(name):
    """The preset directory of release `name`: downloaded, converted and cached once.

    The cache directory's name holds `convert.CONVERTER_VERSION`: a conversion
    by another version of the converter is never loaded; it is deleted and
    the release converted again.
    """
    directory = presets.converted_dir(name, convert.CONVERTER_VERSION)
    if not preset_dir.is_preset(directory):
        os.makedirs(os.path.dirname(directory), exist_ok=True)
        convert_release(name, directory)
    parent, current = os.path.split(directory)
    for entry in os.listdir(parent):
        if entry.startswith(f"{name}.converter-") and entry != current:
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)
    old = os.path.join(presets.cache_root(), f"{name}.weights.h5")  # the first converter's
    if os.path.isfile(old):
        os.remove(old)
    return directory


def _source(weights):
    """`(file to load, name for messages, preset directory or None)` of a weights source."""
    if preset_dir.is_preset(weights):
        directory = os.fspath(weights)
        return (
            files.join(directory, preset_dir.WEIGHTS),
            os.path.basename(os.path.normpath(directory)),
            directory,
        )
    if isinstance(weights, str) and weights in presets.PRESETS:
        directory = release_preset(weights)
        return os.path.join(directory, preset_dir.WEIGHTS), weights, directory
    if (loading.is_pth(weights) or loading.is_keras_file(weights)) and files.isfile(weights):
        return os.fspath(weights), os.path.basename(os.fspath(weights)), None
    if weights in DATASET_ALIASES:
        raise ValueError(
            f"{weights!r} picks the release of a ResNet-50 or ResNet-101 model by its frame "
            f"count; for another model name a preset. Received: weights={weights!r}"
        )
    raise ValueError(f"`weights` must be {ACCEPTED}. Received: weights={weights!r}")


def source_config(weights):
    """`(registered model name or None, constructor kwargs it states, name)` of a source.

    A preset states everything (its config.json), a `.pth` what its tensors
    tell (depth, alpha, stages, classes and the "pytorch" layout), a Keras
    weights file only its ResNet layout.
    """
    path, name, directory = _source(weights)
    if directory is not None:
        model, kwargs = preset_dir.read_config(directory)
        return model, kwargs, name
    if loading.is_pth(path):
        inferred = convert.infer_model_kwargs(pth.read_state_dict(path))
        return _inferred_model(inferred), {**inferred, "layout": "pytorch"}, name
    layout = loading.h5_layout(path)
    return None, ({"layout": layout} if layout else {}), name


def resolve_layout(layout, weights, backbone_weights):
    """Picks the ResNet layout and splits `backbone_weights` by who loads them.

    Whole-model `weights` win over `backbone_weights` (the factories default
    the latter to "imagenet", Keras Applications' weights, which fit only the
    "keras" layout) and decide the layout; a different `layout` pinned by the
    caller is a ValueError naming both. The release's torchvision ImageNet
    ResNets (`"resnet50_imagenet"`, `"resnet101_imagenet"` or a `.pth` file)
    need the "pytorch" layout and are loaded by `load_weights`.

    Returns:
        `(layout, keras_backbone_weights, torch_backbone_weights)`: the first
        go to Keras Applications, the second to `load_weights`.
    """
    needed = None
    if loading.is_pth(weights):
        backbone_weights, needed = None, "pytorch"
    elif weights is not None:
        backbone_weights = None
        needed = source_config(weights)[1].get("layout")
    elif loading.is_pth(backbone_weights) or presets.is_backbone(backbone_weights):
        needed = "pytorch"
    if layout is None:
        layout = needed or "keras"
    elif needed is not None and layout != needed:
        raise ValueError(
            f"These weights need layout={needed!r}. Received: layout={layout!r}, "
            f"weights={weights!r}, backbone_weights={backbone_weights!r}"
        )
    if layout == "pytorch" and backbone_weights not in (None, "imagenet"):
        return layout, None, backbone_weights
    return layout, backbone_weights, None


def load_weights(model, weights, torch_backbone_weights=None):
    """Loads `weights` (or "pytorch"-layout backbone weights) into a model just built.

    Args:
        model: the model.
        weights: None, a release name, a preset directory, a `.pth` file or a
            `.weights.h5` or `.keras` file, loaded strictly: every variable,
            but a classifier of another class count or one the model has not.
        torch_backbone_weights: None, `"resnet50_imagenet"`,
            `"resnet101_imagenet"` or a torchvision-layout `.pth` file (the 2D
            backbone only; MVF modules and classifier stay as initialised).

    Returns:
        The one-line summary also printed on stderr, or None when nothing loads.
    """
    if weights is not None:
        path, name, _ = _source(weights)
    elif torch_backbone_weights is None:
        return None
    elif presets.is_backbone(torch_backbone_weights):
        path, name = presets.download_checkpoint(torch_backbone_weights), torch_backbone_weights
    elif loading.is_pth(torch_backbone_weights):
        path, name = torch_backbone_weights, os.path.basename(torch_backbone_weights)
    else:
        raise ValueError(
            "`backbone_weights` for layout='pytorch' must be 'resnet50_imagenet', "
            "'resnet101_imagenet' or a torchvision-layout .pth file. "
            f"Received: backbone_weights={torch_backbone_weights!r}"
        )
    if loading.is_pth(path):
        summary = loading.load_pth(model, path, name)
    else:
        summary = loading.load_weights_file(model, path, name)
    print(summary, file=sys.stderr)
    return summary


def _same(a, b):
    normal = [tuple(v) if isinstance(v, (list, tuple)) else v for v in (a, b)]
    return normal[0] == normal[1]


def build_model(model, weights, **kwargs):
    """Builds a model for `weights` and loads them through `load_weights`.

    Args:
        model: a registered name, None for the one the source names (a
            preset, a release or a `.pth`), or a callable taking `kwargs`.
        weights: any source `load_weights` takes, `"kinetics400"`, or None
            to build `model` without weights.
        **kwargs: constructor arguments. Those the source states are its
            architecture: only `OVERRIDABLE` ones (and `name`) may differ; a
            conflicting other one is a ValueError naming both values.
    """
    if weights is None:
        if model is None:
            raise ValueError("Name a model from keras_mvf.list_models(), or weights naming one.")
        return registry.create_model(model, **kwargs) if isinstance(model, str) else model(**kwargs)
    if weights in DATASET_ALIASES:
        entry = registry.MODELS.get(model) if isinstance(model, str) else None
        blocks = kwargs.get("block_counts", entry.defaults.get("block_counts") if entry else None)
        weights = release_name(weights, DEPTHS.get(tuple(blocks or ())), kwargs.get("num_frames"))
    stated_model, stated, source = source_config(weights)
    kwargs.pop("backbone_weights", None)  # the whole model's weights win
    if callable(model):
        if stated.get("layout") == "pytorch":
            kwargs.setdefault("layout", "pytorch")
        network = model(**kwargs)
    else:
        if model is None and stated_model is None:
            raise ValueError(
                f"{source} does not say which model it holds: name one from "
                f"keras_mvf.list_models(). Received: model=None, weights={weights!r}"
            )
        if model is not None and stated_model is not None and model != stated_model:
            raise ValueError(
                f"{source} holds a {stated_model!r} model. Received: model={model!r}; leave "
                "the model unset to build the source's."
            )
        for key, value in kwargs.items():
            if (
                key not in (*OVERRIDABLE, "name")
                and key in stated
                and not _same(value, stated[key])
            ):
                raise ValueError(
                    f"{source} was saved with {key}={stated[key]!r}; only "
                    f"{', '.join(OVERRIDABLE)} may differ. Received: {key}={value!r}"
                )
        network = registry.create_model(model or stated_model, **{**stated, **kwargs})
    load_weights(network, weights)
    return network


def preset_directory(preset):
    """The directory of `preset`: a preset directory itself, or a release's cached conversion."""
    if preset_dir.is_preset(preset):
        return os.fspath(preset)
    if isinstance(preset, str) and preset in presets.PRESETS:
        return release_preset(preset)
    raise ValueError(
        "Expected a preset: a release name from keras_mvf.list_weights() or a preset directory "
        f"(with {preset_dir.CONFIG}, {preset_dir.WEIGHTS}, ...). Received: {preset!r}"
    )


def from_preset(preset, **kwargs):
    """Builds the model of a preset, with its weights.

    Args:
        preset: a release name (`keras_mvf.list_weights()`, downloaded and
            converted on first use) or a preset directory (`save_preset`,
            `keras-mvf convert`, `keras-mvf train`).
        **kwargs: constructor arguments that may differ from the preset's:
            `num_classes` (another count gives a new classifier: fine-tuning),
            `num_frames`, `input_shape`, `include_top`, `pooling`,
            `classifier_activation`, `dropout` and `name`. Any other must
            equal the preset's, or it is a ValueError naming both values.

    Returns:
        The Keras model; the summary of what loaded is printed on stderr.

    Example:

    >>> model = keras_mvf.from_preset("mvfnet50_k400_8x8")
    >>> tuned = keras_mvf.from_preset("mvfnet50_k400_8x8", num_classes=101)
    """
    for key in ("weights", "backbone_weights"):
        if key in kwargs:
            raise ValueError(f"A preset brings its weights. Received: {key}={kwargs[key]!r}")
    if not (preset_dir.is_preset(preset) or preset in presets.PRESETS):
        preset_directory(preset)  # raises, naming what a preset is
    return build_model(None, preset, **kwargs)


def save_preset(model, directory, labels=None, metadata=None):
    """Writes `model` as a preset directory, replacing `directory` atomically.

    Args:
        model: a model built by keras_mvf (a factory, `create_model`,
            `from_preset`), which records its registered name and arguments.
        directory: the preset directory to write.
        labels: class names, one per output, for `labels.txt`; optional.
        metadata: dict for `metadata.json` and the model card (e.g. `source`,
            `sha256`, `license`, `frames`, `frame_interval`, `accuracy`,
            `description`); the normalisation and keras_mvf version are added.

    Returns:
        `directory`.
    """
    config = getattr(model, "keras_mvf_config", None)
    if config is None:
        raise ValueError(
            "save_preset needs a model built by keras_mvf (a factory, create_model or "
            "from_preset), which records how to rebuild it. Received: model "
            f"{getattr(model, 'name', model)!r}"
        )
    writers = preset_dir.writers(model, (config["model"], dict(config["kwargs"])), labels, metadata)
    parent = os.path.dirname(os.fspath(directory).rstrip("/"))
    if parent:
        files.makedirs(parent)
    with files.replacing(directory, directory=True) as partial:
        for name, write in writers.items():
            write(os.path.join(partial, name))
    return os.fspath(directory)


def load_model(source):
    """`(model, labels file)` for the `--model` of a command.

    `source` is a `.keras` file (labels: `<name>.labels.txt` beside it, else
    the `labels.txt` beside it, as `train` writes), a preset directory or a
    release name (labels: the preset's `labels.txt`). The labels file may
    not exist.
    """
    if str(source).endswith(".keras"):
        import keras

        import keras_mvf.layers  # noqa: F401 -- registers the layers the file refers to.

        if not files.isfile(source):
            raise FileNotFoundError(f"Model not found: {source}")
        model = keras.models.load_model(source, compile=False)  # inference: no optimizer
        labels = files.labels_path(source)
        if not files.isfile(labels):
            labels = files.join(os.path.dirname(os.fspath(source)), preset_dir.LABELS)
        return model, labels
    directory = preset_directory(source)
    return from_preset(source), files.join(directory, preset_dir.LABELS)
