"""`keras-mvf benchmark`: the benchmark suite (also `python -m keras_mvf.benchmark`)."""

from keras_mvf.benchmark.suite import MIN_RUNS, SECTIONS, TORCH_REFERENCE


def register(subparsers):
    parser = subparsers.add_parser(
        "benchmark",
        help="time MVFNet against C2D, TSM, PyTorch and LiteRT on this machine, in one run",
        description="Times MVFNet against C2D and TSM (inference, training step), against an "
        "independent PyTorch implementation (with --torch-reference), in LiteRT (MobileNetV2, "
        "float32 and int8), the data pipeline, and the peak memory of inference; prints the "
        "machine, medians and ratios. docs/benchmarks.md explains the sections and holds the "
        "figures measured so far.",
    )
    parser.add_argument(
        "--sections",
        nargs="+",
        choices=SECTIONS,
        default=list(SECTIONS),
        metavar="SECTION",
        help=f"sections to run, of {', '.join(SECTIONS)} ('memory' reports the inference "
        "runs' peak memory)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=7,
        help=f"timed runs per subject after warm-up (at least {MIN_RUNS})",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="CPU threads for TensorFlow (intra-op), PyTorch and LiteRT",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print Markdown tables, ready for docs/benchmarks.md",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="gpu: Keras (and PyTorch) on the GPU with mixed float16; LiteRT and data skipped",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny models and inputs: checks that the suite runs (about a minute)",
    )
    parser.add_argument(
        "--torch-reference",
        default=None,
        metavar="PATH",
        help=f"{TORCH_REFERENCE}; without it the pytorch section is skipped",
    )
    parser.set_defaults(run=run_benchmark)


def run_benchmark(args):
    from keras_mvf.benchmark.suite import run

    return run(args)
