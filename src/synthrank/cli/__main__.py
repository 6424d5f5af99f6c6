"""``python -m synthrank.cli ...`` is ``synthrank ...`` (torchrun and the scripts use it)."""

import sys

from synthrank.cli import app

sys.exit(app())
