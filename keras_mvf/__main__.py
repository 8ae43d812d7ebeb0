import sys

from keras_mvf.cli import main

sys.exit(main())
