"""A scenario run: the host (runner.Host) with the script's steps (steps.Steps)."""

from .runner import Host
from .steps import Steps


class Session(Steps, Host):
    pass
