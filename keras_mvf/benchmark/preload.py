"""What the workers' fork server imports before it forks them: TensorFlow, quietly.

Its start-up lines stay off stderr unless logs are wanted, as in every command.
"""

from keras_mvf.cli import import_tensorflow

import_tensorflow()
