"""Helpers shared by ``tests/`` and ``bench/`` (neither imports the other).

- ``servers``: start a server process on a free 127.0.0.1 port, wait for ``/healthz``, stop it;
- ``procfs``: its processes read from ``/proc`` (workers, RSS, CPU time, sockets);
- ``images``: image files built with PIL or by hand (hostile headers, bombs);
- ``lesson_reference``: the lesson's loops, transcribed literally (the independent reference).

Not part of the installed package: it is imported from a checkout (the repository root is on
``sys.path`` under pytest and ``python -m bench...``).
"""
