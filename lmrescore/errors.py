"""Bad user input: the one exception type, and the record of an utterance that failed."""

from __future__ import annotations

from dataclasses import dataclass


class InputError(Exception):
    """Bad input: the message names the file, utterance and position. The CLI prints it as one line."""


@dataclass(frozen=True)
class Failure:
    """One utterance that could not be read or rescored; the others go on.

    Attributes:
        utt_id: the utterance.
        message: why, naming the file and position where known.
    """

    utt_id: str
    message: str
