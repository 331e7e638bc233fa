"""Master calibration frames (bias, dark, flat) and the raw frames each was combined from.

Masters record their inputs and can be marked bad (``MasterFlags.BAD``) so
matching skips them.
"""

from __future__ import annotations

import peewee as pw

from iopreport.store.models.base import BaseModel, utcnow
from iopreport.store.models.raw import Epoch, RawFit


class _Master(BaseModel):
    """Fields shared by the three kinds of master calibration frame."""

    epoch = pw.ForeignKeyField(Epoch, on_delete="CASCADE")
    filename = pw.CharField(unique=True)  # relative to the data directory
    instrument = pw.CharField()
    imgsize = pw.CharField()
    binning = pw.CharField()
    n_frames = pw.IntegerField(default=0)
    level = pw.FloatField(null=True)  # median of the master, ADU (or ADU/s for darks)
    noise = pw.FloatField(null=True)  # robust standard deviation, same unit
    flags = pw.IntegerField(default=0)  # bits.MasterFlags
    error = pw.TextField(default="")
    created = pw.DateTimeField(default=utcnow)


class MasterBias(_Master):
    """Master bias: sigma-clipped combination of the night's bias frames."""


class MasterDark(_Master):
    """Master dark current *rate* (ADU/s), bias subtracted."""

    masterbias = pw.ForeignKeyField(MasterBias, null=True, on_delete="SET NULL")


class MasterFlat(_Master):
    """Normalised master flat for one band, mode and angle."""

    band = pw.CharField()
    obsmode = pw.CharField()
    angle = pw.FloatField(null=True)
    masterbias = pw.ForeignKeyField(MasterBias, null=True, on_delete="SET NULL")
    masterdark = pw.ForeignKeyField(MasterDark, null=True, on_delete="SET NULL")


class MasterBiasInput(BaseModel):
    """A raw frame combined into a master bias."""

    master = pw.ForeignKeyField(MasterBias, backref="inputs", on_delete="CASCADE")
    rawfit = pw.ForeignKeyField(RawFit, on_delete="CASCADE")

    class Meta:
        indexes = ((("master", "rawfit"), True),)


class MasterDarkInput(BaseModel):
    """A raw frame combined into a master dark."""

    master = pw.ForeignKeyField(MasterDark, backref="inputs", on_delete="CASCADE")
    rawfit = pw.ForeignKeyField(RawFit, on_delete="CASCADE")

    class Meta:
        indexes = ((("master", "rawfit"), True),)


class MasterFlatInput(BaseModel):
    """A raw frame combined into a master flat."""

    master = pw.ForeignKeyField(MasterFlat, backref="inputs", on_delete="CASCADE")
    rawfit = pw.ForeignKeyField(RawFit, on_delete="CASCADE")

    class Meta:
        indexes = ((("master", "rawfit"), True),)
