"""The benchmark suite: MVFNet against C2D, TSM, PyTorch and LiteRT, in one run.

`keras-mvf benchmark` (also `python -m keras_mvf.benchmark`) measures, on this
machine and in one process tree:

1. inference of C2D-50, TSM-50 and MVFNet-50 (batch 1 and 8, XLA off and on);
2. a training step (forward, backward, SGD update) of the same three;
3. MVFNet-50 (and C2D-50) in an independent PyTorch implementation, given by
   `--torch-reference` (skipped without it);
4. LiteRT MobileNetV2, MVF against C2D, float32 and int8;
5. the data pipeline's clips per second per core (`keras_mvf.benchmark.data.measure`);
6. the peak memory of each inference run of section 1;
7. sections 1 and 2 on Keras' JAX backend (XLA), where JAX is installed;
8. streaming: one frame pushed into `StreamingClassifier` against a whole window.

Every subject runs in a worker process of its own (`keras_mvf.benchmark.workers`);
the subjects of one comparison are timed in interleaved rounds, after warm-up,
and the report gives medians and their ratios. What the ratios should be, and
the figures measured so far, are in docs/benchmarks.md.
"""

import contextlib
import dataclasses
import importlib.metadata
import importlib.util
import itertools
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from keras_mvf.benchmark.models import (
    inference_function,
    interleaved_timings,
    jax_inference_function,
    random_clips,
    training_function,
)
from keras_mvf.benchmark.workers import (
    Worker,
    WorkerError,
    peak_memory,
    prepare,
    tensorflow_pools_cpu_memory,
)

SECTIONS = ("inference", "training", "pytorch", "tflite", "data", "memory", "jax", "streaming")
MIN_RUNS = 5
WARMUP = 2  # untimed calls per subject: the first (tracing, compiling) and one more
TORCH_REFERENCE = (
    "the independent PyTorch MVFNet to compare with, e.g. tests/torch_reference.py of a "
    "source checkout"
)


@dataclasses.dataclass(frozen=True)
class Scale:
    """Sizes of everything the suite builds: the real ones, or tiny ones for `--quick`.

    `inference` and `training` are the `(batch, XLA)` configurations timed,
    `jax_inference` and `jax_training` the batches timed on JAX;
    `data` is `(clips, repeats, batches, seconds)` for `measure`, repeats None meaning `--runs`;
    `litert_processes` and `inference_processes` are how many processes time
    each LiteRT model and each ResNet in inference (a model's time differs by
    several percent from process to process; a training step keeps one process
    per model, for memory);
    `xla_flags` is `XLA_FLAGS` for the JAX workers.
    """

    frames: int
    size: int
    blocks: tuple
    width: int
    classes: int
    inference: tuple
    training: tuple
    jax_inference: tuple
    jax_training: tuple
    mobilenet_width: float
    calibration_clips: int
    litert_processes: int
    inference_processes: int
    data: tuple
    xla_flags: str = ""


FULL = Scale(
    frames=8,
    size=224,
    blocks=(3, 4, 6, 3),
    width=64,
    classes=400,
    inference=((1, False), (1, True), (8, False), (8, True)),
    training=((2, False), (2, True)),
    jax_inference=(1, 8),
    jax_training=(2,),
    mobilenet_width=1.0,
    calibration_clips=8,
    litert_processes=5,
    inference_processes=2,
    data=(20, None, 10, 10),
)
# Every code path (batches of 1 and more, XLA off and on), as little compiling as possible.
QUICK = Scale(
    frames=4,
    size=32,
    blocks=(1, 1, 1, 1),
    width=8,
    classes=10,
    inference=((1, False), (2, True)),
    training=((2, False),),
    jax_inference=(2,),
    jax_training=(),  # compiling a JAX training step takes about a minute even here
    mobilenet_width=0.35,
    calibration_clips=2,
    litert_processes=2,
    inference_processes=1,
    data=(1, 1, 1, 1),
    # Compiling unoptimised: JAX compiles every initializer of a new shape, about 0.3 s each.
    xla_flags="--xla_backend_optimization_level=0",
)

# The registry's c2d50, tsm50 and mvfnet50 ("keras" layout); `Scale.blocks` sets the depth.
RESNETS = {"C2D-50": "c2d50", "TSM-50": "tsm50", "MVFNet-50": "mvfnet50"}  # -> registry names
PYTORCH_BATCH = 1
TFLITE_VARIANTS = {
    "MVF float32": ("mvfnet_mobilenetv2", None),
    "C2D float32": ("c2d_mobilenetv2", None),
    "MVF int8": ("mvfnet_mobilenetv2", "int8"),
    "C2D int8": ("c2d_mobilenetv2", "int8"),
}
# The vector instructions that decide which kernels TensorFlow, XNNPACK and PyTorch use
# (x86: AVX2, AVX-512, VNNI for int8 dot products, AMX; ARM: NEON, dot product, int8 matmul).
CPU_FEATURES = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "asimd",
    "asimddp",
    "i8mm",
)
LIBRARIES = {
    "TensorFlow": "tensorflow",
    "Keras": "keras",
    "JAX": "jax",
    "numpy": "numpy",
    "torch": "torch",
    "LiteRT": "ai-edge-litert",
}


# --- In worker processes -------------------------------------------------------------


def configure_keras(threads, device):
    """TensorFlow's threads and device: CPU only, or the GPUs with mixed float16.

    Returns the names of the GPUs in use (none on CPU).
    """
    from keras_mvf.utils import logs

    with logs.stderr_hidden_when_quiet():  # TensorFlow's start-up lines, in every worker
        import keras
        import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            "The suite times Keras on the TensorFlow backend: set KERAS_BACKEND=tensorflow. "
            f"Received: backend={keras.backend.backend()!r}"
        )
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu":
        tf.config.set_visible_devices([], "GPU")
        return []
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    keras.mixed_precision.set_global_policy("mixed_float16")
    return [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus
    ]


def keras_resnet(name, scale, layout=None):
    """One of `RESNETS` at `scale`, random weights."""
    from keras_mvf.models.registry import create_model

    return create_model(
        RESNETS[name],
        block_counts=scale.blocks,
        num_classes=scale.classes,
        num_frames=scale.frames,
        input_shape=(scale.size, scale.size, 3),
        base_width=scale.width,
        layout=layout,
    )


def keras_inference(name, scale, batch, xla, threads, device, layout=None):
    configure_keras(threads, device)
    clips = random_clips(batch, scale.frames, scale.size)
    return inference_function(keras_resnet(name, scale, layout), clips, xla)


def keras_training(name, scale, batch, xla, threads, device):
    configure_keras(threads, device)
    clips = random_clips(batch, scale.frames, scale.size)
    return training_function(keras_resnet(name, scale), clips, xla)


def configure_jax(scale):
    """Keras on the JAX backend, on the CPU. A JAX worker is a fresh interpreter that has
    not imported Keras yet, so the backend can still be chosen here."""
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ["JAX_PLATFORMS"] = "cpu"
    if scale.xla_flags:
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {scale.xla_flags}".strip()
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(
            "Keras was imported in this worker before the JAX backend could be chosen. "
            f"Received: backend={keras.backend.backend()!r}"
        )


def jax_inference(name, scale, batch):
    configure_jax(scale)
    clips = random_clips(batch, scale.frames, scale.size)
    return jax_inference_function(keras_resnet(name, scale), clips)


def jax_training(name, scale, batch):
    configure_jax(scale)
    clips = random_clips(batch, scale.frames, scale.size)
    return training_function(keras_resnet(name, scale), clips, jit_compile=True)


def keras_streaming(scale, mode, threads, device):
    """MVFNet-50 on one window of a stream: the whole clip ("window"), or the push of its
    last frame ("push") after the earlier frames went through the per-frame layers."""
    configure_keras(threads, device)
    model = keras_resnet("MVFNet-50", scale)
    clip = random_clips(1, scale.frames, scale.size)
    if mode == "window":
        return inference_function(model, clip)
    from keras_mvf.inference import StreamingClassifier

    stream = StreamingClassifier(model)
    frames = clip[0].astype("uint8")
    for frame in frames[:-1]:
        stream.push(frame)
    return lambda: stream.push(frames[-1])


def load_reference(path):
    """The PyTorch MVFNet file given by `--torch-reference`, as a module."""
    spec = importlib.util.spec_from_file_location("torch_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_inference(reference_path, name, scale, batch, threads, device):
    """Inference of `name` ("MVFNet-50" or "C2D-50") in the PyTorch reference, eval mode."""
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    reference = load_reference(reference_path)
    model = reference.MVFNet(scale.blocks, scale.frames, scale.classes, width=scale.width)
    if RESNETS[name] == "c2d50":
        # C2D: the reference's ResNet without MVF layers.
        model.backbone = reference.ResNet(
            scale.blocks, scale.frames, mvf_layers=(), width=scale.width
        )
    reference.randomize(model)
    target = "cuda" if device == "gpu" else "cpu"
    model.to(target)
    clips = reference.normalise(random_clips(batch, scale.frames, scale.size)).to(target)

    def call():
        precision = (
            torch.autocast(target, torch.float16) if device == "gpu" else contextlib.nullcontext()
        )
        with torch.inference_mode(), precision:
            model(clips)
        if device == "gpu":
            torch.cuda.synchronize()

    return call


def export_litert(directory, name, scale, threads):
    """Exports `TFLITE_VARIANTS[name]` into `directory`; returns the file's path."""
    from keras_mvf.benchmark.tflite import export_models

    configure_keras(threads, "cpu")
    variant = {name: TFLITE_VARIANTS[name]}
    return export_models(
        directory,
        variant,
        scale.frames,
        scale.size,
        scale.mobilenet_width,
        scale.calibration_clips,
    )[name]


def litert_inference(path, scale, threads):
    from keras_mvf.benchmark.tflite import litert_function

    return litert_function(path, random_clips(1, scale.frames, scale.size)[0], threads)


def data_rates(scale, runs):
    from keras_mvf.benchmark.data import measure

    clips, repeats, batches, seconds = scale.data
    return measure(clips, repeats or runs, batches, seconds)


# --- In the parent ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Measured:
    seconds: float  # median of the timed runs
    rss_mib: float  # peak resident memory of the subject's process
    gpu_mib: float | None  # peak TensorFlow GPU memory, on GPU


def _start_workers(calls, fresh_interpreter=False):
    """A worker per `{label: (function, args)}`, each already sent its call."""
    workers = {}
    try:
        for label, (function, args) in calls.items():
            workers[label] = Worker(fresh_interpreter)
            workers[label].start(function, *args)
    except BaseException:
        _close(workers)
        raise
    return workers


def _close(workers):
    for worker in workers.values():
        worker.close()


def call_in_parallel(calls):
    """Runs each `{label: (function, args)}` in a worker of its own, all at once.

    Returns `{label: result}`.
    """
    workers = _start_workers(calls)
    try:
        return {label: worker.result() for label, worker in workers.items()}
    finally:
        _close(workers)


def compare(jobs, runs, gpu_memory=False, fresh_interpreter=False, processes=1):
    """Times each job `{label: (factory, args)}` in workers of its own, in interleaved rounds.

    The workers build their subjects and make the first (compiling) call in
    parallel, then take turns: one more warm-up call each, then `runs` rounds
    of one timed call each. With `processes` > 1 each job runs in that many
    workers, which take turns within the job's share of each round, and its
    median is over all their runs: how fast a process runs a subject depends
    on where its buffers land in memory, which differs from process to
    process. Returns `{label: Measured}`, with the peak memory of the job's
    largest worker.
    """
    workers = _start_workers(
        {
            (label, copy): (prepare, (factory, *args))
            for label, (factory, args) in jobs.items()
            for copy in range(processes)
        },
        fresh_interpreter,
    )
    try:
        for worker in workers.values():
            worker.result()
        timers = {
            label: _in_turn([workers[label, copy].timer() for copy in range(processes)])
            for label in jobs
        }
        medians = interleaved_timings(timers, runs * processes, warmup=(WARMUP - 1) * processes)
        return {
            label: Measured(
                medians[label],
                *max(
                    (
                        workers[label, copy].call(peak_memory, gpu_memory)
                        for copy in range(processes)
                    ),
                    key=lambda memory: memory[0],
                ),
            )
            for label in jobs
        }
    finally:
        _close(workers)


def _in_turn(timers):
    """One timer that calls `timers` in turn."""
    cycle = itertools.cycle(timers)
    return lambda: next(cycle)()


@dataclasses.dataclass
class Section:
    """What a section prints: a title, notes and tables `(headers, rows)`."""

    title: str
    tables: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)


def milliseconds(seconds):
    value = seconds * 1e3
    return f"{value:.1f}" if value >= 10 else f"{value:.3g}"


def ratio(value):
    return f"{value:.3f}"


def render_table(headers, rows, markdown):
    if markdown:
        lines = [headers, ["---"] * len(headers), *rows]
        return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)
    widths = [max(len(str(line[i])) for line in [headers, *rows]) for i in range(len(headers))]
    lines = [headers, ["-" * width for width in widths], *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def render(section, markdown):
    parts = [f"### {section.title}" if markdown else f"== {section.title} =="]
    parts += section.notes
    parts += [render_table(*table, markdown) for table in section.tables]
    return "\n\n".join(parts) + "\n"


def _xla(enabled):
    return "on" if enabled else "off"


def _comparison_table(results, configs):
    """Rows (batch, XLA, ms per model, TSM / C2D, MVF / C2D) for `{config: {model: Measured}}`."""
    headers = ["batch", "XLA", *(f"{name} ms" for name in RESNETS), "TSM / C2D", "MVF / C2D"]
    rows = []
    for batch, xla in configs:
        measured = results[batch, xla]
        base = measured["C2D-50"].seconds
        rows.append(
            [
                batch,
                _xla(xla),
                *(milliseconds(measured[name].seconds) for name in RESNETS),
                ratio(measured["TSM-50"].seconds / base),
                ratio(measured["MVFNet-50"].seconds / base),
            ]
        )
    return headers, rows


class Suite:
    """Runs the selected sections for parsed command-line options and prints the report."""

    def __init__(self, options):
        self.options = options
        self.scale = QUICK if options.quick else FULL
        self.clip = f"{self.scale.frames}x{self.scale.size}x{self.scale.size}"
        self._inference = None

    def print(self, text=""):
        print(text, flush=True)

    def run(self):
        options = self.options
        gpus = self.check_device()
        self.print(render(self.describe_machine(gpus), options.markdown))
        failed = False
        for number, name in enumerate(SECTIONS, start=1):
            if name not in options.sections:
                continue
            start = time.perf_counter()
            try:
                section = getattr(self, f"section_{name}")()
            except WorkerError as error:
                failed = True
                section = Section(name, notes=[f"Failed in a worker process:\n\n{error}"])
            section.title = f"{number}. {section.title}"
            self.print(render(section, options.markdown))
            seconds = time.perf_counter() - start
            print(f"keras-mvf benchmark: section {number} took {seconds:.0f} s", file=sys.stderr)
        self.print(f"Load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
        return 1 if failed else 0

    def check_device(self):
        """GPU names for `--device gpu` (a clear error when there is none); [] on CPU."""
        if self.options.device == "cpu":
            return []
        with Worker() as worker:
            gpus = worker.call(configure_keras, self.options.threads, "gpu")
        if not gpus:
            raise RuntimeError(
                "--device gpu, but TensorFlow sees no GPU (tf.config.list_physical_devices('GPU')"
                " is empty). Run on a machine with a CUDA GPU and a CUDA-enabled TensorFlow, or"
                " use --device cpu."
            )
        return gpus

    def describe_machine(self, gpus):
        options = self.options
        cores = os.cpu_count()
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
        model, features = _cpu()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        device = f"GPU ({', '.join(gpus)}), mixed float16" if gpus else "CPU, float32"
        libraries = ", ".join(
            f"{label} {_version(package)}" for label, package in LIBRARIES.items()
        )
        rows = [
            ["CPU", f"{model}, {cores} cores ({usable} available to this process)"],
            ["CPU features", features],
            ["RAM", f"{memory:.1f} GiB"],
            ["threads used", f"{options.threads} (TensorFlow intra-op, PyTorch, LiteRT)"],
            ["device", device],
            ["TensorFlow CPU allocator", _tensorflow_cpu_allocator()],
            ["C library malloc", f"GLIBC_TUNABLES={_setting('GLIBC_TUNABLES')}"],
            ["libraries", f"Python {platform.python_version()}, {libraries}"],
            [
                "timing",
                f"{WARMUP} warm-up then {options.runs} timed runs per subject, "
                "interleaved; medians",
            ],
            ["load average (1 min) at the start", f"{os.getloadavg()[0]:.2f}"],
        ]
        section = Section("keras-mvf benchmark: machine", tables=[(["", ""], rows)])
        if options.quick:
            section.notes.append(
                "--quick: tiny models and inputs that check the suite runs; "
                "the figures say nothing about speed."
            )
        return section

    def compare_resnets(self, factory, configs, gpu_memory=False, engine="tensorflow", processes=1):
        """`{(batch, xla): {model: Measured}}`: the `RESNETS` compared per configuration,
        each model in `processes` processes.

        On the `"jax"` engine a factory takes `(name, scale, batch)` (XLA is always on).
        """
        options = self.options

        def args(name, batch, xla):
            if engine == "jax":
                return (name, self.scale, batch)
            return (name, self.scale, batch, xla, options.threads, options.device)

        return {
            (batch, xla): compare(
                {name: (factory, args(name, batch, xla)) for name in RESNETS},
                options.runs,
                gpu_memory,
                fresh_interpreter=engine == "jax",
                processes=processes,
            )
            for batch, xla in configs
        }

    def inference_results(self):
        """Section 1's measurements, made once for sections 1 and 6."""
        if self._inference is None:
            self._inference = self.compare_resnets(
                keras_inference,
                self.scale.inference,
                gpu_memory=self.options.device == "gpu",
                processes=self.inference_processes(),
            )
        return self._inference

    def section_inference(self):
        results = self.inference_results()
        return Section(
            f"Inference: clips of {self.clip}, median ms per batch",
            tables=[_comparison_table(results, self.scale.inference)],
            notes=[
                "The registry's c2d50, tsm50 (shift in every block) and mvfnet50, random "
                "weights, a compiled `tf.function` of `model(clips, training=False)`. "
                f"{self.processes_note()}"
            ],
        )

    def inference_processes(self):
        """Processes per model in inference: `Scale.inference_processes` on the CPU, one
        on a GPU, whose memory they would share."""
        return 1 if self.options.device == "gpu" else self.scale.inference_processes

    def processes_note(self):
        """How many processes time each model in inference, and why."""
        processes = self.inference_processes()
        if processes == 1:
            return "Each model runs in a process of its own."
        return (
            f"In inference each model runs in {processes} processes that take turns, "
            f"{self.options.runs} timed runs each, and the median is over all of them: a "
            "model's time differs by several percent from process to process. A training "
            "step runs in one process per model."
        )

    def section_training(self):
        results = self.compare_resnets(keras_training, self.scale.training)
        return Section(
            f"Training step: clips of {self.clip}, median ms per step",
            tables=[_comparison_table(results, self.scale.training)],
            notes=[
                "One `train_on_batch` (forward, backward, SGD with momentum update) with "
                "sparse categorical cross-entropy."
            ],
        )

    def section_pytorch(self):
        options = self.options
        title = f"Keras against PyTorch: inference, batch {PYTORCH_BATCH} x {self.clip}"
        if options.torch_reference is None:
            return Section(
                title, notes=[f"Skipped: pass --torch-reference PATH, {TORCH_REFERENCE}."]
            )
        reference = Path(options.torch_reference)
        missing = _pytorch_missing(options.device)
        if missing:
            return Section(title, notes=[f"Skipped: {missing}."])
        jobs = {}
        for name in ("MVFNet-50", "C2D-50"):
            args = (name, self.scale, PYTORCH_BATCH, False, options.threads, options.device)
            jobs["Keras", name] = (keras_inference, (*args, "pytorch"))
            jobs["PyTorch", name] = (
                torch_inference,
                (str(reference), name, self.scale, PYTORCH_BATCH, options.threads, options.device),
            )
        results = {key: measured.seconds for key, measured in compare(jobs, options.runs).items()}
        rows = [
            [
                f"{name} ms",
                milliseconds(results["Keras", name]),
                milliseconds(results["PyTorch", name]),
                ratio(results["Keras", name] / results["PyTorch", name]),
            ]
            for name in ("MVFNet-50", "C2D-50")
        ]
        mvf_over_c2d = {
            framework: results[framework, "MVFNet-50"] / results[framework, "C2D-50"]
            for framework in ("Keras", "PyTorch")
        }
        rows.append(["MVF / C2D", ratio(mvf_over_c2d["Keras"]), ratio(mvf_over_c2d["PyTorch"]), ""])
        return Section(
            title,
            tables=[(["", "Keras", "PyTorch", "Keras / PyTorch"], rows)],
            notes=[
                f"PyTorch: the independent implementation {reference.name} (C2D is its "
                "ResNet without MVF layers), eval mode, `torch.inference_mode`. Keras: the same "
                'network in the "pytorch" layout (stride on the 3x3 conv, no conv biases), XLA '
                "off; its time includes the normalisation and softmax inside the model."
            ],
        )

    def section_tflite(self):
        options, scale = self.options, self.scale
        title = (
            f"LiteRT MobileNetV2 (width {scale.mobilenet_width}): one clip of {self.clip}, "
            "median ms"
        )
        if options.device == "gpu":
            return Section(title, notes=["Skipped with --device gpu: LiteRT runs on the CPU."])
        with tempfile.TemporaryDirectory() as directory:
            paths = call_in_parallel(
                {
                    name: (export_litert, (directory, name, scale, options.threads))
                    for name in TFLITE_VARIANTS
                }
            )
            jobs = {
                name: (litert_inference, (path, scale, options.threads))
                for name, path in paths.items()
            }
            timings = compare(jobs, options.runs, processes=scale.litert_processes)
            results = {name: measured.seconds for name, measured in timings.items()}
        rows = [
            [
                precision,
                milliseconds(results[f"MVF {precision}"]),
                milliseconds(results[f"C2D {precision}"]),
                ratio(results[f"MVF {precision}"] / results[f"C2D {precision}"]),
            ]
            for precision in ("float32", "int8")
        ]
        rows.append(
            [
                "int8 / float32",
                ratio(results["MVF int8"] / results["MVF float32"]),
                ratio(results["C2D int8"] / results["C2D float32"]),
                "",
            ]
        )
        return Section(
            title,
            tables=[(["", "MVF", "C2D", "MVF / C2D"], rows)],
            notes=[
                "`export_tflite` of mvfnet_mobilenetv2 and c2d_mobilenetv2 (random weights, "
                "BatchNorm statistics settled on 2 random clips; int8 calibrated on "
                f"{scale.calibration_clips}), the LiteRT interpreter (XNNPACK) with "
                f"{options.threads} threads. Each model runs in {scale.litert_processes} processes "
                f"that take turns, {options.runs} timed runs each; the median is over all of "
                "them, because LiteRT's time for a model differs by several percent from "
                "process to process (where its buffers land in memory)."
            ],
        )

    def section_data(self):
        title = "Data pipeline: training clips per second per core"
        if self.options.device == "gpu":
            return Section(title, notes=["Skipped with --device gpu: decoding runs on the CPU."])
        rows = call_in_parallel({"data": (data_rates, (self.scale, self.options.runs))})["data"]
        table = [
            [
                row["codec"],
                row["sampling"],
                row["method"],
                f"{row['clips_per_second_per_core']:.1f}",
            ]
            for row in rows
        ]
        return Section(
            title,
            tables=[(["codec", "sampling", "method", "clips/s/core"], table)],
            notes=[
                "`keras_mvf.benchmark.data.measure`: 8-frame clips, 224 crop and flip; "
                "keyframe_seek (PyAV), selective (OpenCV) and naive decoding on one thread, "
                "`build_dataset` (dense clips) on all cores (docs/benchmarks.md)."
            ],
        )

    def section_memory(self):
        results = self.inference_results()
        headers = ["batch", "XLA", *(f"{name} MiB" for name in RESNETS), "MVF / C2D"]
        tables = [self._memory_table(results, headers, "rss_mib")]
        notes = [
            "Peak resident memory (`ru_maxrss`) of each section 1 subject's own process "
            "(TensorFlow runtime, model, tracing and compilation included)."
        ]
        if self.options.device == "gpu":
            tables.append(self._memory_table(results, headers, "gpu_mib"))
            notes.append("Second table: peak TensorFlow GPU memory of the same runs.")
        return Section("Peak memory of the inference runs", tables=tables, notes=notes)

    def section_jax(self):
        title = f"Keras on JAX (XLA): clips of {self.clip}, median ms"
        if self.options.device == "gpu":
            return Section(
                title, notes=["Skipped with --device gpu: the JAX section runs on the CPU."]
            )
        if importlib.util.find_spec("jax") is None:
            return Section(title, notes=["Skipped: jax is not installed (pip install jax)."])
        tables = []
        for factory, batches, processes in (
            (jax_inference, self.scale.jax_inference, self.inference_processes()),
            (jax_training, self.scale.jax_training, 1),
        ):
            configs = tuple((batch, True) for batch in batches)
            if configs:
                results = self.compare_resnets(factory, configs, engine="jax", processes=processes)
                tables.append(_comparison_table(results, configs))
        return Section(
            title,
            tables=tables,
            notes=[
                "Sections 1 and 2 with `KERAS_BACKEND=jax`: the first table times inference "
                "(`model.stateless_call` under `jax.jit`), the second (not with --quick) a "
                "training step (`train_on_batch`, compiled). XLA uses its own thread pool on "
                f"all cores. {self.processes_note()}"
            ],
        )

    def section_streaming(self):
        options = self.options
        jobs = {
            mode: (keras_streaming, (self.scale, mode, options.threads, options.device))
            for mode in ("window", "push")
        }
        results = {mode: measured.seconds for mode, measured in compare(jobs, options.runs).items()}
        row = [
            milliseconds(results["window"]),
            milliseconds(results["push"]),
            ratio(results["window"] / results["push"]),
        ]
        return Section(
            f"Streaming MVFNet-50: windows of {self.clip}, median ms per window",
            tables=[(["window ms", "push ms", "window / push"], [row])],
            notes=[
                "Batch 1, XLA off. Window: a compiled `model(clip)`. Push: "
                "`StreamingClassifier.push` of a window's last frame, its earlier frames "
                "having gone through the per-frame layers (stem, res2-res3) when they came."
            ],
        )

    @staticmethod
    def _memory_table(results, headers, field):
        rows = []
        for (batch, xla), measured in results.items():
            mib = {name: getattr(measured[name], field) for name in RESNETS}
            rows.append(
                [
                    batch,
                    _xla(xla),
                    *(f"{mib[name]:.0f}" for name in RESNETS),
                    ratio(mib["MVFNet-50"] / mib["C2D-50"]),
                ]
            )
        return headers, rows


def _pytorch_missing(device):
    """Why the PyTorch section cannot run here, or None."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (pip install torch==2.13.0)"
    if device == "gpu":
        import torch

        if not torch.cuda.is_available():
            return "--device gpu, but this torch build sees no CUDA GPU"
    return None


def _cpu():
    """The CPU's model name and which of `CPU_FEATURES` it has, from /proc/cpuinfo."""
    fields = {}
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = fields.get("flags", fields.get("Features"))  # x86, ARM
    if flags is None:
        return model, "unknown"
    present = [feature for feature in CPU_FEATURES if feature in flags.split()]
    return model, ", ".join(present) or f"none of {', '.join(CPU_FEATURES)}"


def _setting(name):
    """The value of the environment variable `name`, which the workers inherit."""
    return os.environ.get(name, "unset")


def _tensorflow_cpu_allocator():
    """Which allocator TensorFlow takes for CPU memory in a worker, and the settings behind it."""
    with Worker() as worker:
        pooled = worker.call(tensorflow_pools_cpu_memory)
    settings = ", ".join(
        f"{name}={_setting(name)}" for name in ("TF_CPU_ALLOCATOR_USE_BFC", "TF_ENABLE_ONEDNN_OPTS")
    )
    return f"{'pooled' if pooled else 'the C library malloc'} ({settings})"


def _version(package):
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run(options):
    """Runs the suite for parsed options (see `keras_mvf.benchmark.commands`); exit status."""
    if options.runs < MIN_RUNS:
        raise ValueError(
            f"`--runs` must be at least {MIN_RUNS}: the suite reports medians of at least "
            f"{MIN_RUNS} timed runs. Received: runs={options.runs}"
        )
    if options.threads < 1:
        raise ValueError(f"`--threads` must be at least 1. Received: threads={options.threads}")
    if options.torch_reference is not None and not os.path.isfile(options.torch_reference):
        raise FileNotFoundError(
            "`--torch-reference` must be the file of a PyTorch MVFNet, such as "
            "tests/torch_reference.py of a source checkout. "
            f"Received: {options.torch_reference!r}, which is not a file"
        )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return Suite(options).run()
