"""A scenario run: the host (runner.Host) with the script's steps (steps.Steps)
and the I/O manager's requests (ioctl.Requests)."""

from .ioctl import Requests
from .runner import Host
from .steps import Steps


class Session(Steps, Requests, Host):
    pass
