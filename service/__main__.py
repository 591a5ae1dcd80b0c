"""``python -m service``: the ``imgfilter`` command line (see :mod:`service.cli`)."""

from __future__ import annotations

# The guard matters: worker processes are *spawned* and re-import the parent's ``__main__``
# module under the name ``__mp_main__``; without it every worker would run the CLI again.
if __name__ == "__main__":
    from .cli import main

    raise SystemExit(main())
