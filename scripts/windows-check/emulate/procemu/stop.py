"""Stop: what a handler raises to end the run (no emulator needed to import it)."""


class Stop(Exception):
    """Raised by a handler: the run stops here and the scenario fails (what
    Driver Verifier or a bugcheck would do on Windows). `kind` names the
    check that fired."""

    def __init__(self, message, kind='kernel'):
        super().__init__(message)
        self.kind = kind
