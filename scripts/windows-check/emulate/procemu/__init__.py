"""procnotify.sys under speakeasy-emulator: the emulated kernel (kernel.py,
pool.py, over guest.py; stop.py), the framework (wdf.py, wdfio.py, with
procnotify's documented arguments in contract.py), the I/O manager's
requests and the query (ioctl.py, query.py), the scenarios (scenario.py,
catalogue.py), how they run (runner.py, steps.py, session.py, detectors.py)
and are checked against the simulator and printed by procnotify-ctl
(simulator.py, compare.py, run.py). emulate.py is the command; selftest.py
tests what needs no image.
"""
