"""``python -m tests.support.crash_cli ARGS``: the real ``dossier`` CLI with the crash hook installed.

The hook's log and kill point come from CRASH_HOOK_LOG / CRASH_HOOK_KILL_AT (see crash_hook.py);
without them this is exactly ``python -m dossier.cli ARGS``.
"""

from __future__ import annotations

import sys

from dossier.cli import main
from tests.support.crash_hook import install_from_env

if __name__ == "__main__":
    install_from_env()
    sys.exit(main(sys.argv[1:]))
