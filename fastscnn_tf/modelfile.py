"""Reading a trained `.keras` model file (with errors that say what is wrong with it) and
writing one atomically.

Every command that takes a `.keras` model (and `FastSCNN.from_preset`) reads it here.
"""

import zipfile

from fastscnn_tf.files import atomic_path, check_input_file


def keras_archive_problem(path):
    """What makes `path` no `.keras` archive (a zip holding config.json), or None. Keras itself
    reports a truncated or foreign file as "File not found"."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            corrupt = archive.testzip()  # reads every member and checks its CRC
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        return f"not a zip file, truncated or of another format: {error}"
    if corrupt is not None:
        return f"{corrupt} inside it is corrupt"
    if "config.json" not in names:
        return "no config.json inside it"
    return None


def load_keras_model(path):
    """A `.keras` model for inference, with errors that say what is wrong with the file."""
    import keras

    import fastscnn_tf.layers  # noqa: F401  (registers the custom layers)

    path = str(path)
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: expected a trained .keras model.")
    check_input_file(path, "model file")
    problem = keras_archive_problem(path)
    if problem:
        raise ValueError(f"{path}: not a valid .keras archive ({problem}).")
    try:
        return keras.models.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError) as error:  # a config Keras cannot rebuild
        raise ValueError(f"{path}: cannot load this .keras model: {error}") from None


def save_model_atomic(model, path, include_optimizer=True):
    """`model.save` through a temporary file: a kill mid-write leaves the old file intact."""
    with atomic_path(path) as tmp:
        model.save(tmp, include_optimizer=include_optimizer)
