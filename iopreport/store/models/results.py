"""Final photometric and polarimetric results, their member frames, and imported results.

A result's identity does not depend on database ids (``members_key``), so
flags in flags.toml survive a full reprocessing; raw and corrected q and u are
both kept, and automatic and manual quality flags are separate columns.
"""

from __future__ import annotations

import peewee as pw

from iopreport.store.models.base import BaseModel, JSONField, utcnow
from iopreport.store.models.raw import Epoch, RawFit
from iopreport.store.models.sources import AstroSource


class PhotoPolResult(BaseModel):
    """A final photometric or polarimetric result of one source.

    Identity is (``astrosource``, ``members_key``, ``method``): ``members_key``
    is the sorted raw file locations of the member frames, one per line, so a
    result is found again after the database is rebuilt.
    """

    astrosource = pw.ForeignKeyField(AstroSource, backref="results", on_delete="CASCADE")
    epoch = pw.ForeignKeyField(Epoch, backref="results", on_delete="CASCADE")
    members_key = pw.TextField()
    mode = pw.CharField()  # photometry | polarimetry
    method = pw.CharField()  # e.g. relphot, osn-wheel, hwp-ratio, hwp-lsq, dipol-16
    instrument = pw.CharField()
    band = pw.CharField()
    exptime = pw.FloatField(null=True)
    juliandate = pw.FloatField()
    juliandate_min = pw.FloatField()
    juliandate_max = pw.FloatField()
    n_frames = pw.IntegerField(default=1)
    # photometry
    aperture_px = pw.FloatField(null=True)
    flux_counts = pw.FloatField(null=True)
    flux_counts_err = pw.FloatField(null=True)
    mag_inst = pw.FloatField(null=True)
    mag_inst_err = pw.FloatField(null=True)
    mag_zp = pw.FloatField(null=True)
    mag_zp_err = pw.FloatField(null=True)
    mag = pw.FloatField(null=True)
    mag_err = pw.FloatField(null=True)  # statistical: photon noise and zero-point scatter
    mag_sys_err = pw.FloatField(null=True)  # systematic: calibrators' literature errors
    n_calibrators = pw.IntegerField(null=True)
    # polarimetry, before instrumental correction (the IOP4 paper Eqs. 1-3, 10-12, 16-18)
    q_raw = pw.FloatField(null=True)
    q_raw_err = pw.FloatField(null=True)
    u_raw = pw.FloatField(null=True)
    u_raw_err = pw.FloatField(null=True)
    # polarimetry, after instrumental polarization and zero angle (Eqs. 4-7, 15, 19-20)
    q = pw.FloatField(null=True)
    q_err = pw.FloatField(null=True)
    u = pw.FloatField(null=True)
    u_err = pw.FloatField(null=True)
    p = pw.FloatField(null=True)  # fraction
    p_err = pw.FloatField(null=True)
    p_debiased = pw.FloatField(null=True)  # Ricean bias removed
    chi = pw.FloatField(null=True)  # degrees East of North, [0, 180)
    chi_err = pw.FloatField(null=True)
    # systematic parts, not in p_err / chi_err: instrumental polarization, zero angle
    p_sys_err = pw.FloatField(null=True)
    chi_sys_err = pw.FloatField(null=True)
    # host-galaxy correction (R band, Nilsson et al. 2007)
    mag_host_corrected = pw.FloatField(null=True)
    mag_host_corrected_err = pw.FloatField(null=True)
    p_host_corrected = pw.FloatField(null=True)
    p_host_corrected_err = pw.FloatField(null=True)
    # quality
    flags = pw.IntegerField(default=0)  # bits.ResultFlags (automatic)
    manual_flags = pw.IntegerField(default=0)  # bits.ManualFlags (from flags.toml)
    flag_reasons = JSONField(default=list)  # one text per flag that applies
    error = pw.TextField(default="")
    modified = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("astrosource", "members_key", "method"), True),
            (("astrosource", "juliandate"), False),
            (("epoch",), False),
        )

    @staticmethod
    def make_members_key(filelocs) -> str:
        """Identity text of a member set: sorted raw file locations, one per line."""
        return "\n".join(sorted(set(filelocs)))


class PhotoPolMember(BaseModel):
    """A raw frame that went into a result."""

    result = pw.ForeignKeyField(PhotoPolResult, backref="members", on_delete="CASCADE")
    rawfit = pw.ForeignKeyField(RawFit, backref="result_links", on_delete="CASCADE")

    class Meta:
        indexes = ((("result", "rawfit"), True), (("rawfit",), False))


class ImportedResult(BaseModel):
    """A result another pipeline computed, imported for the record (schema 7).

    Kept in its own table so that nothing iopreport computes from its own
    results (nightly means, alerts, night summaries, recomputation, flags)
    ever reads it; the source pages draw it as a separate trace. ``method``
    names the importer (``iop4-import``), ``origin_id`` the result's id in the
    database it came from, and ``members_key`` its raw file locations
    (:meth:`PhotoPolResult.make_members_key`). ``flags`` keeps the origin's
    quality bits as they were stored there.
    """

    astrosource = pw.ForeignKeyField(AstroSource, backref="imported_results", on_delete="CASCADE")
    method = pw.CharField()  # iop4-import
    origin_id = pw.IntegerField()
    members_key = pw.TextField()
    telescope = pw.CharField()
    night = pw.DateField()
    mode = pw.CharField()  # photometry | polarimetry
    reduction = pw.CharField(default="")  # the origin's method name (IOP4: relphot, relpol)
    instrument = pw.CharField()
    band = pw.CharField()
    exptime = pw.FloatField(null=True)
    juliandate = pw.FloatField()
    juliandate_min = pw.FloatField()
    juliandate_max = pw.FloatField()
    n_frames = pw.IntegerField(default=1)
    aperture_px = pw.FloatField(null=True)
    flux_counts = pw.FloatField(null=True)
    flux_counts_err = pw.FloatField(null=True)
    mag_inst = pw.FloatField(null=True)
    mag_inst_err = pw.FloatField(null=True)
    mag_zp = pw.FloatField(null=True)
    mag_zp_err = pw.FloatField(null=True)
    mag = pw.FloatField(null=True)
    mag_err = pw.FloatField(null=True)
    q_raw = pw.FloatField(null=True)
    u_raw = pw.FloatField(null=True)
    p = pw.FloatField(null=True)  # fraction
    p_err = pw.FloatField(null=True)
    chi = pw.FloatField(null=True)  # degrees
    chi_err = pw.FloatField(null=True)
    mag_host_corrected = pw.FloatField(null=True)
    mag_host_corrected_err = pw.FloatField(null=True)
    p_host_corrected = pw.FloatField(null=True)
    p_host_corrected_err = pw.FloatField(null=True)
    flags = pw.IntegerField(default=0)  # the origin's bits (IOP4: 2 bad photometry, 4 bad pol.)
    modified = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("method", "astrosource", "members_key", "mode"), True),
            (("astrosource", "juliandate"), False),
        )
