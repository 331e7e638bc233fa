"""iopreport: photometry and polarimetry of optical monitoring nights, to a static site."""

__version__ = "0.1.0"
