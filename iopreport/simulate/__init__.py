"""Synthetic telescope archives with known truth: the demo's data and the test bed.

See docs/simulator.md. Entry point: :func:`simulate_night`.
"""

from iopreport.simulate.night import TRUTH_FILE, NightResult, simulate_night

__all__ = ["TRUTH_FILE", "NightResult", "simulate_night"]
