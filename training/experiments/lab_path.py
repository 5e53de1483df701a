"""Puts the lab's modules (``training/``) on the import path of an experiment run as a script.

Run an experiment from the repository root: ``python training/experiments/NAME.py ...``.
"""

import sys
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[1]
REPO_ROOT = TRAINING.parent
if str(TRAINING) not in sys.path:
    sys.path.insert(0, str(TRAINING))
