"""`train()`: the paper's recipes with plain `model.fit`, on any `tf.distribute` strategy."""

import csv
import io
import json
import os
import re
import time

import keras
import tensorflow as tf

from keras_mvf.models import pretrained
from keras_mvf.training import distribute, optimization, recipes
from keras_mvf.utils import files
from keras_mvf.utils.progress import progress_verbosity

# Recipe values `train()` takes when an argument is left as None.
RECIPE_KEYS = (
    "sampling",
    "num_frames",
    "frame_interval",
    "alpha",
    "epochs",
    "lr_steps",
    "warmup_epochs",
    "warmup_start",
    "flip",
    "crop_size",
    "short_side",
    "base_lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "clip_norm",
    "dropout",
)


def mixed_precision_policy():
    """`"mixed_float16"` when a GPU is visible, `"mixed_bfloat16"` elsewhere (CPU, TPU)."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


def build_datasets(
    train_data,
    val_data,
    settings,
    batch_size,
    train_crop,
    label_swap,
    root,
    seed,
    strategy,
    data_service=None,
):
    """Training and validation `tf.data` pipelines from manifests or packed TFRecords (datasets
    pass through).

    Returns `(train, val, class_names, num_train_videos, val_steps)`; the last
    three are None for datasets given as `tf.data.Dataset` (and the counts for
    TFRecords packed without an index). These pipelines repeat: an epoch (and a
    validation pass) is a fixed number of batches, as skipped videos leave the
    pass length unknown; a validation set of unknown length is read once.
    `strategy` makes them once per input pipeline, so that on a cluster every
    worker reads and decodes only its own share of the videos (or shards).
    """
    classes = size = val_steps = None
    if isinstance(train_data, (str, os.PathLike)):
        from keras_mvf import data

        source, classes, size = data.load_source(train_data, root)
        common = {
            "num_frames": settings["num_frames"],
            "sampling": settings["sampling"],
            "batch_size": batch_size,
            "crop_size": settings["crop_size"],
            "short_side": settings["short_side"],
            "root": root,
            "data_service": data_service,
        }
        if settings["sampling"] == "dense":
            common["frame_interval"] = settings["frame_interval"]

        def pipelines(source, repeat=True, **kwargs):
            def make(context):
                dataset = data.build_dataset(source, input_context=context, **common, **kwargs)
                return dataset.repeat() if repeat else dataset

            return strategy.distribute_datasets_from_function(make)

        train_data = pipelines(
            source,
            training=True,
            train_crop=train_crop,
            flip=settings["flip"],
            label_swap=label_swap,
            seed=seed,
        )
        if isinstance(val_data, (str, os.PathLike)):
            val_source, _, val_size = data.load_source(val_data, root)
            val_steps = -(-val_size // batch_size) if val_size is not None else None
            val_data = pipelines(val_source, val_steps is not None, training=False)
    return train_data, val_data, classes, size, val_steps


def _read_text(path):
    """The text of `path` (a URI or local), or None when it does not exist."""
    return files.read_bytes(path).decode("utf-8") if files.isfile(path) else None


def _logged(log_path, monitor):
    """The `monitor` value of every epoch in the CSV log (None where absent), for `best`."""
    text = _read_text(log_path)
    if text is None:
        return []
    return [_number(row.get(monitor)) for row in csv.DictReader(io.StringIO(text, newline=""))]


def _epoch_of(row):
    """The epoch of a whole `CSVLogger` row (the first field), or infinity for a torn one."""
    epoch = _number(next(csv.reader([row]))[0]) if row.endswith("\n") else None
    return float("inf") if epoch is None else epoch


def _number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def train(
    model,
    train_data,
    val_data=None,
    out_dir="runs/train",
    recipe="kinetics400",
    *,
    num_classes=None,
    batch_size=8,
    steps_per_epoch=None,
    sampling=None,
    num_frames=None,
    frame_interval=None,
    alpha=None,
    epochs=None,
    lr_steps=None,
    lr_decay=0.1,
    warmup_epochs=None,
    warmup_start=None,
    flip=None,
    train_crop="random_resized",
    label_swap=None,
    crop_size=None,
    short_side=None,
    root=None,
    base_lr=None,
    momentum=None,
    nesterov=None,
    weight_decay=None,
    clip_norm=None,
    dropout=None,
    weights=None,
    backbone_weights=None,
    model_kwargs=None,
    strategy=None,
    mixed_precision=False,
    xla=False,
    tensorboard=True,
    seed=None,
    verbose=None,
    data_service=None,
):
    """Trains a video model with `model.fit` and the paper's recipe; resumes after a crash.

    Arguments left as None take the value of `recipe` (see `RECIPES`); every
    other argument overrides it. The run writes to `out_dir`: `log.csv`,
    `tensorboard/`, `last.weights.h5` and `best.weights.h5` after every epoch,
    `backup/` (the training state: running the same call again after a crash
    continues from the last finished epoch), and at the end `model.keras` and
    the result as a preset (`config.json`, `model.weights.h5`, `labels.txt`
    with the manifest's class names, `metadata.json`, `README.md`; see
    `keras_mvf.save_preset`), so that `out_dir` is a preset directory. A
    `log.csv` with rows but no backup to resume, an earlier run's, is renamed
    to `log.<date>-<time>.csv` first.
    Every file is written under a temporary name and renamed when complete, in
    an order that makes a crash (even a SIGKILL) at any moment lose or repeat
    no epoch's log row or weights; a damaged backup raises `CorruptBackupError`.

    Args:
        model: a name from `keras_mvf.list_models()`, None for the model
            `weights` name (a release, preset or `.pth`), or a callable taking
            `num_classes, num_frames, alpha, dropout, input_shape` (and
            `backbone_weights` when given) that returns a Keras model. It is built
            inside the strategy's scope.
        train_data: path of a manifest (`keras_mvf.data`), packed TFRecords (a
            folder from `keras-mvf data pack`, or a glob; paths may be URIs such
            as `gs://...`), or a `tf.data.Dataset` of `(clips, labels)` batches
            of the global batch size (on a cluster, the same batches on every
            worker: each keeps its part of them).
        val_data: like `train_data`, evaluated after every epoch; optional.
        out_dir: folder (or URI, `gs://...`) for logs and checkpoints. Defaults to
            `"runs/train"`.
        recipe: name of the recipe giving the defaults. Defaults to `"kinetics400"`.
        num_classes: int; read from the manifest (or the shards' index) when None.
        batch_size: int, global batch (all replicas together). Defaults to `8`.
        steps_per_epoch: int, batches per epoch, drawn from the repeated data.
            Defaults to one pass over the training videos (needed only for
            TFRecords packed without an index).
        sampling, num_frames, frame_interval, flip, crop_size, short_side: the
            clip sampling and augmentation of `keras_mvf.data.build_dataset`.
        train_crop: `"random_resized"` (Kinetics) or `"multi_scale"` (TSN).
        label_swap: optional `{label: label}` map applied with horizontal flips.
        root: folder the manifest's paths are relative to.
        alpha, dropout: passed to the model builder.
        epochs: int, epochs to train (the lr schedule is in epochs too).
        lr_steps: epochs at which the rate is multiplied by `lr_decay` (`0.1`).
        warmup_epochs, warmup_start: linear warm-up length (epochs, may be a
            fraction) and the fraction of the rate it starts from.
        base_lr: learning rate per 8 clips; the rate is `base_lr * batch_size / 8`.
        momentum, nesterov: SGD momentum.
        weight_decay: coupled L2 weight decay on every trainable variable, as
            PyTorch's SGD applies it (see `keras_mvf.training.optimization`).
        clip_norm: global gradient-norm clipping; 0 turns it off.
        weights: what to start from (fine-tuning): a release name or
            `"kinetics400"`, a preset directory, a `.pth`, `.weights.h5` or
            `.keras` file. Loaded strictly by
            `keras_mvf.models.pretrained.build_model`: the source's
            architecture (layout, depth, alpha, stages) is built, every
            variable loads but a classifier of another class count, and an
            architecture argument that conflicts with the source's is a
            ValueError naming both.
        backbone_weights: `"imagenet"` or a file, for the 2D backbone.
        model_kwargs: dict of further keyword arguments for the model builder.
        strategy: see `keras_mvf.training.get_strategy`. Defaults to one device.
            With `"multi_worker"`, every worker runs the same call (with its own
            `TF_CONFIG`); only the chief writes `out_dir`, the others keep their
            backup state in `out_dir/workers/<task type>_<index>/`.
        mixed_precision: bool, compute in float16 (GPU) or bfloat16 (elsewhere).
        xla: bool, compile the train step with XLA.
        tensorboard: bool, write TensorBoard logs. Defaults to `True`.
        seed: int, seeds weights, sampling and augmentation.
        data_service: address of a tf.data service dispatcher
            (`"grpc://host:port"`) whose workers decode the packed TFRecords;
            see `keras_mvf.data.build_dataset`.
        verbose: `model.fit` verbosity. Defaults to a progress bar (1) on a terminal,
            one line per epoch (2) otherwise.

    Returns:
        `(model, history)`: the trained model and the `History` of this call.
    """
    settings = recipes.get_recipe(recipe)
    given = {
        "sampling": sampling,
        "num_frames": num_frames,
        "frame_interval": frame_interval,
        "alpha": alpha,
        "epochs": epochs,
        "lr_steps": lr_steps,
        "warmup_epochs": warmup_epochs,
        "warmup_start": warmup_start,
        "flip": flip,
        "crop_size": crop_size,
        "short_side": short_side,
        "base_lr": base_lr,
        "momentum": momentum,
        "nesterov": nesterov,
        "weight_decay": weight_decay,
        "clip_norm": clip_norm,
        "dropout": dropout,
    }
    settings.update({key: value for key, value in given.items() if value is not None})
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int. Received: batch_size={batch_size}")
    # Multi-worker collectives must be set up before TensorFlow runs anything.
    strategy = distribute.get_strategy(strategy)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    chief = distribute.is_chief(strategy)
    work_dir = distribute.worker_dir(os.fspath(out_dir), strategy)
    files.makedirs(work_dir)

    train_ds, val_ds, classes, size, val_steps = build_datasets(
        train_data,
        val_data,
        settings,
        batch_size,
        train_crop,
        label_swap,
        root,
        seed,
        strategy,
        data_service,
    )
    given = not isinstance(train_data, (str, os.PathLike))
    num_classes = num_classes or (len(classes) if classes else None)
    if num_classes is None:
        raise ValueError(
            "`num_classes` is needed when `train_data` is a tf.data.Dataset (or TFRecords "
            "packed without an index)."
        )
    if steps_per_epoch is None:
        # One pass over the data per epoch.
        steps_per_epoch = int(train_ds.cardinality()) if given else (size or 0) // batch_size
        if steps_per_epoch < 1:
            raise ValueError(
                "Cannot tell the epoch length (fewer videos than one batch, an infinite "
                "dataset, or TFRecords packed without an index): pass `steps_per_epoch`."
            )
    if given:
        # A dataset of the caller's: fixed-length epochs from an endless stream, as
        # the manifest pipelines are.
        train_ds = train_ds.repeat()

    previous_policy = keras.config.dtype_policy()
    if mixed_precision:
        keras.config.set_dtype_policy(mixed_precision_policy())
    try:
        with strategy.scope():
            build_kwargs = {
                "num_classes": num_classes,
                "num_frames": settings["num_frames"],
                "alpha": settings["alpha"],
                "dropout": settings["dropout"],
                "input_shape": (settings["crop_size"], settings["crop_size"], 3),
                **({"backbone_weights": backbone_weights} if backbone_weights else {}),
                **(model_kwargs or {}),
            }
            network = pretrained.build_model(model, weights, **build_kwargs)
            optimization.add_weight_decay(network, settings["weight_decay"])
            optimizer = optimization.make_optimizer(
                batch_size,
                steps_per_epoch,
                base_lr=settings["base_lr"],
                momentum=settings["momentum"],
                nesterov=settings["nesterov"],
                clip_norm=settings["clip_norm"],
                lr_steps=settings["lr_steps"],
                lr_decay=lr_decay,
                warmup_epochs=settings["warmup_epochs"],
                warmup_start=settings["warmup_start"],
            )
            network.compile(
                optimizer=optimizer,
                loss="sparse_categorical_crossentropy",
                metrics=[
                    keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                    keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"),
                ],
                jit_compile=bool(xla),
            )
            # Built now, not in the first trace of the training step: TensorFlow traces a
            # function a second time when its first trace created variables. (Under float16,
            # `network.optimizer` is Keras' loss-scale wrapper of `optimizer`.)
            network.optimizer.build(network.trainable_variables)
            if distribute.is_multi_worker(strategy):
                distribute.repair_multi_worker_fit(network)
        restored = restore_backup(network, files.join(work_dir, "backup"))
        # Outside the scope: Keras builds a throwaway optimizer at every save, whose
        # variables would be created by the strategy, with one collective each on a
        # cluster (so saving only on the chief would stall or break the other workers).
        history = network.fit(
            train_ds,
            validation_data=val_ds,
            validation_steps=val_steps,
            epochs=settings["epochs"],
            initial_epoch=restored[0],
            steps_per_epoch=steps_per_epoch,
            shuffle=False,  # the input pipeline shuffles
            callbacks=_callbacks(work_dir, restored, val_ds is not None, tensorboard, chief),
            verbose=progress_verbosity() if verbose is None else verbose,
        )
        if chief:
            logged = history.history
            key = "val_accuracy" if logged.get("val_accuracy") else "accuracy"
            metadata = {
                "description": f"Trained by keras_mvf with the {recipe} recipe"
                + (f", from {weights}." if weights else "."),
                "source": os.fspath(weights) if weights else None,
                "frames": settings["num_frames"],
                "frame_interval": settings.get("frame_interval"),
                "sampling": settings["sampling"],
                "accuracy": f"{logged[key][-1]:.1%} {key}, last epoch" if logged.get(key) else None,
            }
            _save_model(network, work_dir, classes, metadata)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return network, history


class CorruptBackupError(RuntimeError):
    """The training backup in `out_dir/backup` cannot be read; the message says what to do."""


# The backup's commit point: the last epoch done and its weights file.
_METADATA = "training_metadata.json"


def _replace_atomically(path, write):
    """Calls `write(temporary path)` beside `path`, then renames the result onto `path`."""
    with files.replacing(path) as temporary:
        write(temporary)


def _write_text(text):
    def write(path):
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)

    return write


def _copy_from(source):
    return lambda path: files.copy(source, path)


def _save_model(model, work_dir, classes, metadata):
    """Saves `model.keras` and the preset files beside it (see `keras_mvf.save_preset`).

    `labels.txt` holds the manifest's class names when the model has one
    output per class; `predict`, `evaluate` and `export` find them there.
    """
    from keras_mvf.weights import preset_dir

    labels = classes if classes and len(classes) == model.output_shape[-1] else None
    config = getattr(model, "keras_mvf_config", None)
    if config is not None:
        config = (config["model"], dict(config["kwargs"]))
        writers = preset_dir.writers(model, config, labels, metadata)
    else:  # a model of the caller's own builder: its labels only
        writers = (
            {preset_dir.LABELS: lambda path: files.write_labels(path, labels)} if labels else {}
        )
    for name, write in writers.items():
        _replace_atomically(files.join(work_dir, name), write)
    _replace_atomically(files.join(work_dir, "model.keras"), model.save)


class _Backup(keras.callbacks.Callback):
    """Backs up the training state (weights and optimizer) at every epoch end, with a commit point.

    Every epoch end writes `backup/epoch-<N>.weights.h5`, then replaces
    `training_metadata.json` (`{"epoch": N, "weights": file name}`) in one
    rename: that is when the epoch counts as done. Older weight files go after
    (on a cluster, once every worker has committed the epoch, so that all still
    hold the last epoch they all did). A SIGKILL at any moment thus leaves a
    backup of the last done epoch, whole.
    """

    def __init__(self, backup_dir, weights):
        super().__init__()
        self.backup_dir = backup_dir
        self.weights = weights  # the weights file of the last epoch done

    def on_epoch_end(self, epoch, logs=None):
        files.makedirs(self.backup_dir)
        name = f"epoch-{epoch + 1}.weights.h5"
        _replace_atomically(
            files.join(self.backup_dir, name),
            lambda path: self.model.save_weights(path, overwrite=True),
        )
        _replace_atomically(
            files.join(self.backup_dir, _METADATA),
            _write_text(json.dumps({"epoch": epoch + 1, "weights": name})),
        )
        self.weights = files.join(self.backup_dir, name)
        strategy = self.model.distribute_strategy
        if distribute.is_multi_worker(strategy):
            _all_workers(strategy, 0)  # waits until every worker has committed this epoch
        _remove_stale(self.backup_dir, self.weights)


_EPOCH_WEIGHTS = re.compile(r"epoch-.*\.weights\.h5")


def _remove_stale(backup_dir, weights):
    """Removes the weight files in `backup_dir` but `weights` (a crash may have left them)."""
    for name in files.listdir(backup_dir):
        stale = files.join(backup_dir, name)
        if _EPOCH_WEIGHTS.fullmatch(name) and stale != weights:
            files.remove(stale)


def _all_workers(strategy, value):
    """The int `value` of every replica of `strategy`; a collective, so also a barrier."""
    gather = tf.function(
        lambda: strategy.run(
            lambda: tf.distribute.get_replica_context().all_gather(tf.constant([value]), axis=0)
        )
    )
    return strategy.experimental_local_results(gather())[0].numpy().tolist()


def restore_backup(model, backup_dir):
    """Loads the backup in `backup_dir` into the compiled `model` (its optimizer built), for
    `model.fit(initial_epoch=)`.

    On a cluster every worker resumes from the same epoch: the last one that
    all of them committed (a worker may have committed one more before the
    crash; it keeps that epoch's predecessor until all have, see `_Backup`).

    Returns:
        `(epochs done, weights file)`, or `(0, None)` when there is no backup.

    Raises:
        CorruptBackupError: naming the file, when the backup cannot be read.
    """
    state = read_backup(backup_dir)
    strategy = model.distribute_strategy
    if distribute.is_multi_worker(strategy):
        done = min(_all_workers(strategy, state[0] if state else 0))
        if state and done < state[0]:
            state = _roll_back(backup_dir, done)
    if state:
        try:
            model.load_weights(state[1])
        except (OSError, ValueError) as error:
            raise _corrupt(state[1], backup_dir, f"{error}; truncated?") from None
    _remove_stale(backup_dir, state[1] if state else None)
    return state or (0, None)


def _roll_back(backup_dir, epoch):
    """Makes `epoch` (kept by `_Backup`) the last one done in `backup_dir`; `(epoch, weights)`."""
    path = files.join(backup_dir, _METADATA)
    if epoch == 0:
        files.remove(path)
        return None
    name = f"epoch-{epoch}.weights.h5"
    weights = files.join(backup_dir, name)
    if not files.isfile(weights):
        raise _corrupt(weights, backup_dir, "missing")
    _replace_atomically(path, _write_text(json.dumps({"epoch": epoch, "weights": name})))
    return epoch, weights


def _corrupt(path, backup_dir, reason):
    return CorruptBackupError(
        f"{path}: unreadable training backup ({reason}). Delete the folder "
        f"{backup_dir} to start over, or restore it from a copy."
    )


def read_backup(backup_dir):
    """`(epochs done, weights file)` of the training backup in `backup_dir`, or None if none.

    Raises:
        CorruptBackupError: naming the file, when the backup cannot be read.
    """
    path = files.join(backup_dir, _METADATA)
    if not files.isfile(path):
        return None
    try:
        state = json.loads(files.read_bytes(path))
    except (OSError, ValueError) as error:
        raise _corrupt(path, backup_dir, f"not JSON: {error}; truncated?") from None
    # Backups of earlier versions (Keras' own layout) name no weights file.
    name = state.get("weights", "latest.weights.h5") if isinstance(state, dict) else None
    epoch = state.get("epoch") if isinstance(state, dict) else None
    if not (isinstance(epoch, int) and epoch >= 0 and isinstance(name, str)) or (
        os.path.basename(name) != name
    ):
        raise _corrupt(path, backup_dir, f"expected {{'epoch': int, 'weights': name}}, got {state}")
    weights = files.join(backup_dir, name)
    if not files.isfile(weights):
        raise _corrupt(weights, backup_dir, "missing")
    return epoch, weights


def trim_log(log_path, epochs):
    """Drops the rows of `log_path` (a `CSVLogger` file) for epochs `epochs` and later.

    Those epochs were not backed up before the crash and run again on resume,
    so their rows would otherwise appear twice.
    """
    text = _read_text(log_path)
    if text is None:
        return
    lines = text.splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if _epoch_of(line) < epochs]
    if kept != lines:
        _replace_atomically(log_path, _write_text("".join(kept)))


class _EpochWeights(keras.callbacks.Callback):
    """Copies each epoch's backup to `last.weights.h5`, and to `best.weights.h5` when better.

    Runs after `_Backup` saved (and so committed) the epoch, and repeats this
    for the restored epoch on resume, so a crash between the backup and these
    copies loses neither. `monitor` is read from the logs; higher is better.
    """

    def __init__(self, backup, work_dir, monitor, history):
        super().__init__()
        self.backup = backup
        self.last = files.join(work_dir, "last.weights.h5")
        self.best_path = files.join(work_dir, "best.weights.h5")
        self.monitor = monitor
        self.history = history  # the monitor values of the epochs done, from log.csv

    def on_train_begin(self, logs=None):
        self.best = max((v for v in self.history[:-1] if v is not None), default=None)
        if self.backup.weights is not None:
            self.copy_weights(self.history[-1] if self.history else None)

    def on_epoch_end(self, epoch, logs=None):
        self.copy_weights((logs or {}).get(self.monitor))

    def copy_weights(self, value):
        """Copies the backed-up weights to `last`, and to `best` if `value` beats the best."""
        _replace_atomically(self.last, _copy_from(self.backup.weights))
        if value is not None and (self.best is None or value > self.best):
            self.best = value
            _replace_atomically(self.best_path, _copy_from(self.backup.weights))


def _set_aside(log_path):
    """Renames `log_path` to `log.<date>-<time>.csv` if it has rows, never over another file.

    Called when there is no backup to resume: the rows are an earlier run's.
    """
    text = _read_text(log_path)
    if text is None or len(text.splitlines()) < 2:
        return
    stem = files.join(os.path.dirname(log_path), time.strftime("log.%Y%m%d-%H%M%S"))
    target, count = f"{stem}.csv", 1
    while files.isfile(target):
        target, count = f"{stem}-{count}.csv", count + 1
    files.rename(log_path, target)
    print(f"{log_path} holds an earlier run's epochs and no backup to resume: renamed to {target}")


class _CSVLogger(keras.callbacks.CSVLogger):
    """Keras' `CSVLogger`, closing at the end a log on a URI too (a `GFile` has no `closed`)."""

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
            self.csv_file = None
        self.writer = None


def _callbacks(work_dir, restored, validate, tensorboard, chief):
    """Backup, and for the chief the CSV log, last and best weights and TensorBoard.

    `restored` is what `restore_backup` returned. Every worker of a cluster
    backs up its own training state (each one must restore it to resume); the
    other files would only repeat the chief's. The order is the crash-safety:
    an epoch's log row is written before its backup marks it done (a crash in
    between drops the row on resume, see `trim_log`), and the weight files are
    copied from the backup after (and again on resume).
    """
    done, weights = restored
    backup_dir = files.join(work_dir, "backup")
    for folder in (work_dir, backup_dir):
        for name in files.listdir(folder):
            if name.startswith(files.PARTIAL_PREFIX):
                files.remove_tree(files.join(folder, name))  # left by a crash mid-write
    backup = _Backup(backup_dir, weights)
    if not chief:
        return [backup]
    log_path = files.join(work_dir, "log.csv")
    if done:
        trim_log(log_path, done)
    else:
        _set_aside(log_path)
    monitor = "val_accuracy" if validate else "accuracy"
    callbacks = [
        _CSVLogger(log_path, append=True),
        backup,
        _EpochWeights(backup, work_dir, monitor, _logged(log_path, monitor)),
    ]
    if tensorboard:
        callbacks.append(
            keras.callbacks.TensorBoard(files.join(work_dir, "tensorboard"), write_graph=False)
        )
    return callbacks
