"""Evaluates a trained model on a manifest with the paper's two test protocols.

"fast" is 1 clip x centre crop; "accurate" is 10 clips x 3 crops (Kinetics; use
`--clips 2` for Something-Something) with the softmax averaged over views.
Reports go to `--out` (predictions.csv, per_class.csv, metrics.json, confusion.png).

    python examples/evaluate_checkpoint.py runs/k400/model.keras val.jsonl --out eval/
"""

import argparse

from keras_mvf.training.evaluation import evaluate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help=".keras file")
    parser.add_argument("manifest", help="manifest of the test videos (keras-mvf data index)")
    parser.add_argument("--out", default=None, help="folder for the reports")
    parser.add_argument("--clips", type=int, default=None, help="override the clip count")
    args = parser.parse_args(argv)

    for protocol in ("fast", "accurate"):
        results = evaluate(
            args.model,
            args.manifest,
            protocol=protocol,
            num_clips=args.clips,
            out_dir=args.out and f"{args.out}/{protocol}",
        )
        print(
            f"{protocol}: {results['views']} view(s), top-1 {results['top1']:.2%}, "
            f"top-5 {results['top5']:.2%}, mean class {results['mean_class_accuracy']:.2%}"
        )


if __name__ == "__main__":
    main()
