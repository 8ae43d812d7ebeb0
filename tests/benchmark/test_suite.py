"""The benchmark suite: the whole of it in --quick mode, its errors and its skip notes."""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf

from keras_mvf.benchmark.suite import QUICK
from keras_mvf.cli import main

TORCH_REFERENCE = str(Path(__file__).parents[1] / "torch_reference.py")


def sections(report):
    """`{number: text}` of the report's "### N. title" sections."""
    parts = re.split(r"^### (\d)\. ", report, flags=re.MULTILINE)
    return {int(number): text for number, text in zip(parts[1::2], parts[2::2], strict=True)}


def tables(text):
    """The Markdown tables of a section, each as a list of `{header: cell}` rows."""
    found = []
    for block in re.findall(r"(?:^\|.*\|\n)+", text, flags=re.MULTILINE):
        lines = [
            [cell.strip() for cell in line.strip()[1:-1].split("|")]
            for line in block.strip().splitlines()
        ]
        assert set(lines[1]) == {"---"}, block
        found.append([dict(zip(lines[0], line, strict=True)) for line in lines[2:]])
    return found


def positive(cell):
    """A printed median or ratio as a float, which must be finite and positive."""
    value = float(cell)
    assert math.isfinite(value) and value > 0, cell
    return value


def check_ratio(cell, numerator, denominator):
    """A printed ratio: finite, positive and that of the printed medians (to the rounding of
    its three decimals, which is most of a small ratio)."""
    expected = positive(numerator) / positive(denominator)
    assert positive(cell) == pytest.approx(expected, rel=0.02, abs=0.0005)


def check_comparison(rows, configs):
    """A table of sections 1, 2 and 7: a row per configuration, medians, and the ratios of
    the medians."""
    assert [(int(row["batch"]), row["XLA"] == "on") for row in rows] == list(configs)
    for row in rows:
        for ratio, model in (("MVF / C2D", "MVFNet-50"), ("TSM / C2D", "TSM-50")):
            check_ratio(row[ratio], row[f"{model} ms"], row["C2D-50 ms"])


@pytest.fixture(scope="module")
def quick_report():
    result = subprocess.run(
        [
            *(sys.executable, "-m", "keras_mvf.benchmark", "--quick", "--markdown"),
            *("--runs", "5", "--torch-reference", TORCH_REFERENCE),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        # glibc's default, named: the header reports the workers' setting.
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # No informational start-up lines (Abseil's "I0000 ...") from the workers or their server.
    assert not re.search(r"^I\d{4} ", result.stderr, flags=re.MULTILINE), result.stderr
    return result.stdout


def test_quick_suite_prints_every_section_with_medians_and_ratios(quick_report):
    found = sections(quick_report)
    assert sorted(found) == [1, 2, 3, 4, 5, 6, 7, 8], quick_report
    assert "| threads used | 2 " in quick_report
    assert "| TensorFlow CPU allocator | pooled (TF_CPU_ALLOCATOR_USE_BFC=true, " in quick_report
    assert "| C library malloc | GLIBC_TUNABLES=glibc.malloc.hugetlb=0 |" in quick_report
    assert re.search(r"\| CPU features \| \S", quick_report)
    assert re.search(r"TensorFlow \d+\.\d+.*Keras \d+\.\d+.*JAX \d.*torch \d", quick_report)
    assert "Skipped" not in quick_report
    # Targets and their judgments live in docs/benchmarks.md, not in the report.
    assert not re.search(r"target|\bmet\b", quick_report, flags=re.IGNORECASE)

    (inference,) = tables(found[1])
    check_comparison(inference, QUICK.inference)
    (training,) = tables(found[2])
    check_comparison(training, QUICK.training)

    (pytorch,) = tables(found[3])
    assert [row[""] for row in pytorch] == ["MVFNet-50 ms", "C2D-50 ms", "MVF / C2D"]
    mvf, c2d, mvf_over_c2d = pytorch
    for row in (mvf, c2d):
        check_ratio(row["Keras / PyTorch"], row["Keras"], row["PyTorch"])
    for framework in ("Keras", "PyTorch"):
        check_ratio(mvf_over_c2d[framework], mvf[framework], c2d[framework])

    (litert,) = tables(found[4])
    assert [row[""] for row in litert] == ["float32", "int8", "int8 / float32"]
    float32, int8, int8_over_float32 = litert
    for row in (float32, int8):
        check_ratio(row["MVF / C2D"], row["MVF"], row["C2D"])
    for model in ("MVF", "C2D"):
        check_ratio(int8_over_float32[model], int8[model], float32[model])

    (data,) = tables(found[5])
    assert data and all(positive(row["clips/s/core"]) for row in data)

    (jax_inference,) = tables(found[7])  # --quick leaves out the JAX training step
    check_comparison(jax_inference, [(batch, True) for batch in QUICK.jax_inference])

    (memory,) = tables(found[6])
    assert len(memory) == len(QUICK.inference)
    assert all(positive(row["MVFNet-50 MiB"]) > 100 for row in memory)
    for row in memory:
        check_ratio(row["MVF / C2D"], row["MVFNet-50 MiB"], row["C2D-50 MiB"])

    ((streaming,),) = tables(found[8])
    check_ratio(streaming["window / push"], streaming["window ms"], streaming["push ms"])


def test_pytorch_section_without_a_reference_says_how_to_enable_it(capsys):
    assert main(["benchmark", "--quick", "--sections", "pytorch"]) == 0
    (note,) = [line for line in capsys.readouterr().out.splitlines() if "Skipped" in line]
    assert note.startswith("Skipped: pass --torch-reference PATH, the independent PyTorch MVFNet")
    assert "tests/torch_reference.py" in note


def test_torch_reference_that_is_not_a_file_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "torch_reference.py"
    argv = ["benchmark", "--quick", "--sections", "pytorch", "--torch-reference", str(missing)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "keras-mvf benchmark: error: `--torch-reference` must be the file" in err
    assert str(missing) in err


def test_pytorch_section_without_torch_prints_a_skip_note(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # how Python marks a module as missing
    argv = ["benchmark", "--quick", "--sections", "pytorch", "--torch-reference", TORCH_REFERENCE]
    assert main(argv) == 0
    assert "Skipped: torch is not installed" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a GPU is visible")
def test_gpu_device_without_a_gpu_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    assert main(["benchmark", "--quick", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "keras-mvf benchmark: error: --device gpu, but TensorFlow sees no GPU" in err


def test_fewer_than_five_runs_is_an_error(capsys):
    assert main(["benchmark", "--quick", "--runs", "3"]) == 2
    assert "`--runs` must be at least 5" in capsys.readouterr().err


def sleeper(claims):
    """A benchmark subject that sleeps 10 ms in the first process to prepare one and
    30 ms in any later one: how fast a process runs a subject can differ."""
    import time

    try:
        os.close(os.open(claims, os.O_CREAT | os.O_EXCL))
        seconds = 0.01
    except FileExistsError:
        seconds = 0.03
    return lambda: time.sleep(seconds)


def test_compare_pools_the_runs_of_every_process(tmp_path):
    """One process gives 10 ms, the other 30 ms; the median of their pooled runs lies
    between (either process alone would give its own time)."""
    from keras_mvf.benchmark.suite import compare

    one = compare({"subject": (sleeper, (str(tmp_path / "first"),))}, runs=5)
    two = compare({"subject": (sleeper, (str(tmp_path / "second"),))}, runs=5, processes=2)
    assert one["subject"].seconds == pytest.approx(0.01, abs=0.005)
    assert two["subject"].seconds == pytest.approx(0.02, abs=0.005)
    assert two["subject"].rss_mib > 0
