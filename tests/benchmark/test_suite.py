"""The benchmark suite: the whole of it in --quick mode, its errors and its skip notes."""

import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from keras_mvf.benchmark.suite import QUICK, target_line
from keras_mvf.cli import main

TARGET = re.compile(r"^- (.+): (\d+\.\d+), target <= (\d+(?:\.\d+)?): (met|not met)$")
NUMBER = re.compile(r"^\d+(\.\d+)?$")


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


def targets(text):
    lines = [line for line in text.splitlines() if "target <=" in line]
    matches = [TARGET.match(line) for line in lines]
    assert all(matches), lines
    return {m[1]: (float(m[2]), float(m[3]), m[4]) for m in matches}


def check_comparison(text, what, bound):
    """Sections 1 and 2: numeric medians, ratios that match them, one target per row."""
    (rows,) = tables(text)
    assert [(int(row["batch"]), row["XLA"] == "on") for row in rows] == list(
        QUICK.inference if what == "inference" else QUICK.training
    )
    found = targets(text)
    for row in rows:
        ms = {name: float(row[f"{name} ms"]) for name in ("C2D-50", "TSM-50", "MVFNet-50")}
        assert all(value > 0 for value in ms.values()), row
        for ratio, model in (("MVF / C2D", "MVFNet-50"), ("TSM / C2D", "TSM-50")):
            assert float(row[ratio]) == pytest.approx(ms[model] / ms["C2D-50"], rel=0.02), row
        label = f"MVFNet-50 / C2D-50, {what}, batch {row['batch']}, XLA {row['XLA']}"
        assert found[label][:2] == (float(row["MVF / C2D"]), bound)
    assert len(found) == len(rows)


@pytest.fixture(scope="module")
def quick_report():
    result = subprocess.run(
        [sys.executable, "-m", "keras_mvf.benchmark", "--quick", "--markdown", "--runs", "5"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quick_suite_prints_every_section_with_numbers_and_judged_targets(quick_report):
    found = sections(quick_report)
    assert sorted(found) == [1, 2, 3, 4, 5, 6], quick_report
    assert "| threads used | 2 " in quick_report
    assert re.search(r"TensorFlow \d+\.\d+.*Keras \d+\.\d+.*torch \d", quick_report)

    check_comparison(found[1], "inference", 1.03)
    check_comparison(found[2], "training step", 1.05)

    (pytorch,) = tables(found[3])
    keras_ms, torch_ms = (float(pytorch[0][column]) for column in ("Keras", "PyTorch"))
    assert float(pytorch[0]["Keras / PyTorch"]) == pytest.approx(keras_ms / torch_ms, rel=0.02)
    assert all(NUMBER.match(pytorch[2][column]) for column in ("Keras", "PyTorch"))
    assert list(targets(found[3])) == ["MVFNet-50, Keras / PyTorch"]

    (litert,) = tables(found[4])
    assert [row[""] for row in litert] == ["float32", "int8", "int8 / float32"]
    for row in litert[:2]:
        assert float(row["MVF / C2D"]) == pytest.approx(
            float(row["MVF"]) / float(row["C2D"]), rel=0.02
        )
    assert sorted(targets(found[4])) == [
        "MVF / C2D, LiteRT float32",
        "MVF / C2D, LiteRT int8",
        "MVF, LiteRT int8 / float32",
    ]

    (data,) = tables(found[5])
    assert data and all(float(row["clips/s/core"]) > 0 for row in data)

    (memory,) = tables(found[6])
    assert len(memory) == len(QUICK.inference)
    assert all(float(row["MVFNet-50 MiB"]) > 100 for row in memory)

    for value, bound, verdict in targets(quick_report).values():
        assert verdict == ("met" if value <= bound else "not met")


def test_target_is_judged_on_the_printed_ratio():
    assert target_line("x", 1.0304, 1.03) == "- x: 1.030, target <= 1.03: met"
    assert target_line("x", 1.0306, 1.03) == "- x: 1.031, target <= 1.03: not met"


def test_pytorch_section_without_the_reference_prints_a_skip_note(tmp_path, capsys):
    missing = tmp_path / "torch_reference.py"
    argv = ["benchmark", "--quick", "--sections", "pytorch", "--torch-reference", str(missing)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"Skipped: the PyTorch reference {missing} is not there" in out
    assert "target <=" not in out


def test_pytorch_section_without_torch_prints_a_skip_note(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # how Python marks a module as missing
    assert main(["benchmark", "--quick", "--sections", "pytorch"]) == 0
    assert "Skipped: torch is not installed" in capsys.readouterr().out


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a GPU is visible")
def test_gpu_device_without_a_gpu_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    assert main(["benchmark", "--quick", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "keras-mvf benchmark: error: --device gpu, but TensorFlow sees no GPU" in err


def test_fewer_than_five_runs_is_an_error(capsys):
    assert main(["benchmark", "--quick", "--runs", "3"]) == 2
    assert "`--runs` must be at least 5" in capsys.readouterr().err
