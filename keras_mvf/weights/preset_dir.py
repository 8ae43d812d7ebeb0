"""The files of a preset directory, Keras-native like keras-hub presets.

    config.json       {"model": registered model name, "kwargs": constructor arguments}
    model.weights.h5  the weights (`model.save_weights`)
    labels.txt        class names, one per line, the line number being the class index
    metadata.json     where the weights come from: source URL, sha256 of the source
                      file, licence, frames x interval, normalisation, reported
                      accuracy, keras_mvf version
    README.md         a model card generated from the above

This module reads and writes the files; building the model they describe is
`keras_mvf.from_preset`'s.
"""

import importlib.metadata
import json
import os

from keras_mvf.utils import files

CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
LABELS = "labels.txt"
METADATA = "metadata.json"
CARD = "README.md"


def is_preset(path):
    """Whether `path` is a preset directory (it holds a `config.json`)."""
    return isinstance(path, (str, os.PathLike)) and files.isfile(files.join(path, CONFIG))


def _tuples(value):
    """JSON lists back to the tuples the constructors were given."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def read_config(directory):
    """`(registered model name, constructor kwargs)` of the preset in `directory`."""
    path = files.join(directory, CONFIG)
    try:
        config = json.loads(files.read_bytes(path))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read the preset's configuration ({error}).") from None
    if not (
        isinstance(config, dict)
        and isinstance(config.get("model"), str)
        and isinstance(config.get("kwargs"), dict)
    ):
        raise ValueError(
            f'{path}: expected {{"model": registered model name, "kwargs": {{...}}}}. '
            f"Received: {str(config)[:200]}"
        )
    return config["model"], {key: _tuples(value) for key, value in config["kwargs"].items()}


def read_labels(directory):
    """The preset's class names, or None when it has no `labels.txt`."""
    path = files.join(directory, LABELS)
    return files.read_labels(path) if files.isfile(path) else None


def read_metadata(directory):
    """The preset's `metadata.json` as a dict ({} when it has none)."""
    path = files.join(directory, METADATA)
    if not files.isfile(path):
        return {}
    return json.loads(files.read_bytes(path))


def normalisation(model):
    """`{"mean": [...], "std": [...]}` the model applies to RGB 0..255 input, or None."""
    import keras
    import numpy as np

    layer = next((layer for layer in model.layers if layer.name == "preprocessing"), None)
    if layer is None:
        return None
    mean = keras.ops.convert_to_numpy(layer.mean).reshape(-1)
    std = np.sqrt(keras.ops.convert_to_numpy(layer.variance).reshape(-1))
    return {"mean": [round(float(v), 4) for v in mean], "std": [round(float(v), 4) for v in std]}


def writers(model, config, labels=None, metadata=None):
    """`{file name: write(path)}` of the preset of `model`, for the caller to write atomically.

    Args:
        model: the Keras model whose weights are saved.
        config: `(registered model name, constructor kwargs)`.
        labels: class names, one per output of the model, or None.
        metadata: dict of facts for `metadata.json`; the normalisation and the
            keras_mvf version are added.
    """
    name, kwargs = config
    labels = files.check_labels(labels, model.output_shape[-1])
    metadata = {
        **(metadata or {}),
        "normalisation": normalisation(model),
        "keras_mvf_version": importlib.metadata.version("keras-mvf"),
    }

    def text(content):
        def write(path):
            with open(path, "w", encoding="utf-8") as file:
                file.write(content)

        return write

    found = {
        WEIGHTS: model.save_weights,
        CONFIG: text(json.dumps({"model": name, "kwargs": kwargs}, indent=2) + "\n"),
        METADATA: text(json.dumps(metadata, indent=2) + "\n"),
        CARD: text(model_card(model, name, labels, metadata)),
    }
    if labels is not None:
        found[LABELS] = lambda path: files.write_labels(path, labels)
    return found


def _frames(metadata):
    """`8 x interval 8` (dense sampling), `8, uniform sampling` or `8`."""
    text = str(metadata["frames"])
    if metadata.get("frame_interval"):
        return f"{text} x interval {metadata['frame_interval']}"
    return f"{text}, {metadata['sampling']} sampling" if metadata.get("sampling") else text


def model_card(model, name, labels, metadata):
    """The README.md of a preset: what the model is, where it comes from, how to use it."""
    shape = ", ".join(str(size) for size in model.input_shape[1:])
    rows = [
        (
            "model",
            f"`{name}` of the keras_mvf registry, {model.count_params() / 1e6:.2f}M parameters",
        ),
        ("input", f"clips `(batch, {shape})`, RGB 0..255"),
        (
            "output",
            f"{model.output_shape[-1]} "
            + ("class probabilities (names in labels.txt)" if labels else "values"),
        ),
    ]
    norm = metadata.get("normalisation")
    if norm:
        rows.append(("normalisation", f"inside the model: mean {norm['mean']}, std {norm['std']}"))
    facts = (
        ("frames", "frames per clip", _frames),
        ("source", "source", lambda m: m["source"]),
        ("sha256", "sha256 of the source", lambda m: f"`{m['sha256']}`"),
        ("license", "licence", lambda m: m["license"]),
        ("accuracy", "reported accuracy", lambda m: m["accuracy"]),
        ("keras_mvf_version", "keras_mvf", lambda m: m["keras_mvf_version"]),
    )
    rows += [(label, show(metadata)) for key, label, show in facts if metadata.get(key)]
    table = "\n".join(f"| {label} | {value} |" for label, value in rows)
    title = metadata.get("name", name)
    description = metadata.get("description", f"A `{name}` video model of keras_mvf.")
    return f"""# {title}

{description}

| | |
|---|---|
{table}

## Use

```python
import keras_mvf

model = keras_mvf.from_preset("path/to/this/directory")
model = keras_mvf.from_preset("path/to/this/directory", num_classes=101)  # new classifier
```

```
keras-mvf predict video.mp4 --model path/to/this/directory
keras-mvf train --weights path/to/this/directory --train train.jsonl --val val.jsonl
```

Generated by keras_mvf; the files are described in its docs/pretrained.md.
"""
