"""The TUI tests drive the screen with the ceremony service's in-memory fake cluster."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pipe_driver
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ceremony"))
