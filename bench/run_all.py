"""`make bench`: run every benchmark in bench/ and write bench/results.md (see bench/main.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: make `bench` importable

from bench.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
