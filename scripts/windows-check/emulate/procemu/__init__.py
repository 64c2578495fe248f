"""procnotify.sys under speakeasy-emulator: the emulated kernel (kernel.py,
pool.py, wdf.py over guest.py), the scenarios (scenario.py, catalogue.py),
how they run (runner.py, steps.py, session.py, detectors.py) and are checked
against the simulator (simulator.py, compare.py, run.py). emulate.py is the
command; selftest.py tests what needs no image.
"""
