"""The one exception type for bad user input (files, configs, lattices, models)."""


class InputError(Exception):
    """Bad input: the message names the file, utterance and position. The CLI prints it as one line."""
