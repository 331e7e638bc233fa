"""The reduction: classification, masters, calibration, astrometry, photometry, polarimetry.

Each module is one stage: a pure function from inputs to a result; the night
orchestrator persists results in one transaction per frame.
"""
