"""The lab's modules are scripts that import each other by name, as when run from ``training/``."""

import sys
from pathlib import Path

TRAINING = Path(__file__).resolve().parents[1]
for folder in (TRAINING, TRAINING / "experiments"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
