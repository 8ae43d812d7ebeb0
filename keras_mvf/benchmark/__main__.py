"""`python -m keras_mvf.benchmark`: the suite, the same as `keras-mvf benchmark`."""

import sys

from keras_mvf.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
