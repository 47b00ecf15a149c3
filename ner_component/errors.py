"""The project's one exception type.

Library code raises `NerComponentError` (or a subclass) for a problem with the
user's input or setup, said in one line that names the file, line and value where
there are ones. Library code never exits: each script turns the exception into a
one-line exit, once, with `ner_component.cli.run`.
"""
import signal


class NerComponentError(ValueError):
    """A problem with the user's input or setup, said in one line."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM reached a process that stops cleanly on them (annotate). A
    BaseException, as KeyboardInterrupt is: no `except Exception` on the way (spaCy's
    workers have one) may swallow it, and every `finally` on the way runs (temporary
    output files are removed). `note` says what the stop left undone."""

    def __init__(self, signum: int, note: str = "") -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.note = note
