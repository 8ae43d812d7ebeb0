"""Builds every registered model at 8 x 224 x 224 and prints its GFLOPs and parameters.

Counts follow the MVFNet paper's convention (see `keras_mvf.utils.count_flops`);
ResNets are shown in both layouts: "pytorch" (the released checkpoints, the
paper's figures) and "keras" (Keras Applications, the ImageNet initialisation).
Backbones are randomly initialised: nothing is downloaded.
"""

import keras_mvf
from keras_mvf.utils import count_flops, count_params


def main():
    print("| model | layout | GFLOPs (8x224x224) | parameters |")
    print("|---|---|---|---|")
    for name in keras_mvf.list_models():
        layouts = ("keras",) if "mobilenet" in name else ("pytorch", "keras")
        for layout in layouts:
            kwargs = {} if "mobilenet" in name else {"layout": layout}
            model = keras_mvf.create_model(name, num_frames=8, num_classes=400, **kwargs)
            print(
                f"| {name} | {layout} | {count_flops(model):.3f} | "
                f"{count_params(model) / 1e6:.2f}M |",
                flush=True,
            )


if __name__ == "__main__":
    main()
