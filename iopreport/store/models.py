"""Peewee models of the iopreport store.

The tables follow IOP4's data model (IOP4's documentation "IOP4 concepts";
IOP4's data model) and mend the weaknesses listed there:

* a result's identity does not depend on database ids: a photometry result is
  (source, raw file) and a polarimetric one (source, sorted member files),
  kept in ``PhotoPolResult.members_key``, so flags in flags.toml survive a
  full reprocessing;
* raw *and* corrected q and u are stored, and the Ricean-debiased p is a
  separate column;
* every failure keeps its reason as text (``error`` columns), beside the
  ``flags`` bit enums of :mod:`iopreport.store.bits`;
* masters record their inputs, reduced frames record their masters, and
  masters can be marked bad (``MasterFlags.BAD``) so matching skips them;
* automatic and manual (flags.toml) quality flags are separate columns.

Times are naive UTC ``datetime`` values; Julian dates are UTC JD floats.
"""

from __future__ import annotations

import datetime as dt
import json

import peewee as pw

database_proxy = pw.DatabaseProxy()


def utcnow() -> dt.datetime:
    """Current UTC time without tzinfo (how the store keeps timestamps)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class JSONField(pw.TextField):
    """A value stored as JSON text (lists and dicts of plain values)."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class AstroSource(BaseModel):
    """A source of catalog.toml: target, calibrator, star or standard.

    Rows are written from catalog.toml on every run (:func:`iopreport.catalog.sync_catalog`);
    a source removed from the file keeps its row (results point at it) with
    ``in_catalog = False``.
    """

    name = pw.CharField(unique=True)
    other_names = JSONField(default=list)
    srctype = pw.CharField()  # blazar | star | calibrator | polarization_standard
    ra_deg = pw.FloatField()  # ICRS
    dec_deg = pw.FloatField()  # ICRS
    redshift = pw.FloatField(null=True)
    comment = pw.TextField(default="")
    references = JSONField(default=list)
    mag_U = pw.FloatField(null=True)
    mag_U_err = pw.FloatField(null=True)
    mag_B = pw.FloatField(null=True)
    mag_B_err = pw.FloatField(null=True)
    mag_V = pw.FloatField(null=True)
    mag_V_err = pw.FloatField(null=True)
    mag_R = pw.FloatField(null=True)
    mag_R_err = pw.FloatField(null=True)
    mag_I = pw.FloatField(null=True)
    mag_I_err = pw.FloatField(null=True)
    in_catalog = pw.BooleanField(default=True)
    catalog_line = pw.IntegerField(null=True)
    modified = pw.DateTimeField(default=utcnow)

    def __str__(self) -> str:
        return self.name

    def literature_mag(self, band: str) -> tuple[float | None, float | None]:
        """Literature magnitude and error in ``band`` (None where unknown)."""
        return getattr(self, f"mag_{band}"), getattr(self, f"mag_{band}_err")

    @property
    def calibrator_sources(self) -> list[AstroSource]:
        """The calibrators catalog.toml lists for this source, by name."""
        query = (
            AstroSource.select()
            .join(Calibrator, on=(Calibrator.calibrator == AstroSource.id))
            .where(Calibrator.target == self)
            .order_by(AstroSource.name)
        )
        return list(query)


class Calibrator(BaseModel):
    """``calibrator`` is a comparison star of ``target`` (catalog.toml ``calibrators``)."""

    target = pw.ForeignKeyField(AstroSource, backref="calibrator_links", on_delete="CASCADE")
    calibrator = pw.ForeignKeyField(AstroSource, backref="target_links", on_delete="CASCADE")

    class Meta:
        indexes = ((("target", "calibrator"), True),)


class StandardPolarization(BaseModel):
    """Literature polarization of a standard in one band; p as a fraction, chi in degrees."""

    source = pw.ForeignKeyField(AstroSource, backref="standard_polarization", on_delete="CASCADE")
    band = pw.CharField()
    p = pw.FloatField()
    p_err = pw.FloatField(null=True)
    chi = pw.FloatField(null=True)
    chi_err = pw.FloatField(null=True)

    class Meta:
        indexes = ((("source", "band"), True),)


class Epoch(BaseModel):
    """A night at a telescope; ``night`` is the evening date (IOP4 convention)."""

    telescope = pw.CharField()
    night = pw.DateField()
    flags = pw.IntegerField(default=0)  # bits.EpochFlags
    error = pw.TextField(default="")
    first_seen = pw.DateTimeField(default=utcnow)
    last_listed = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("telescope", "night"), True), (("night",), False))

    @property
    def epochname(self) -> str:
        """``<TEL>/<YYYY-MM-DD>``, as IOP4 names epochs."""
        return f"{self.telescope}/{self.night.isoformat()}"

    def __str__(self) -> str:
        return self.epochname


class RawFit(BaseModel):
    """A raw FITS file of an epoch, and what its header says."""

    epoch = pw.ForeignKeyField(Epoch, backref="rawfits", on_delete="CASCADE")
    filename = pw.CharField()
    size_bytes = pw.IntegerField(null=True)
    sha256 = pw.CharField(null=True)
    flags = pw.IntegerField(default=0)  # bits.RawFitFlags
    error = pw.TextField(default="")
    instrument = pw.CharField(null=True)
    imgtype = pw.CharField(null=True)  # bias | dark | flat | light
    obsmode = pw.CharField(null=True)  # photometry | polarimetry
    band = pw.CharField(null=True)
    angle = pw.FloatField(null=True)  # polarizer or half-wave-plate angle, degrees
    juliandate = pw.FloatField(null=True)
    exptime = pw.FloatField(null=True)  # seconds
    binning = pw.CharField(null=True)  # "XxY"
    imgsize = pw.CharField(null=True)  # "WxH" in pixels
    object_name = pw.CharField(null=True)  # OBJECT keyword as written
    target = pw.ForeignKeyField(AstroSource, null=True, backref="rawfits", on_delete="SET NULL")

    class Meta:
        indexes = (
            (("epoch", "filename"), True),
            (("epoch", "imgtype"), False),
            (("juliandate",), False),
        )

    @property
    def fileloc(self) -> str:
        """``<TEL>/<YYYY-MM-DD>/<filename>``: the file's identity across databases."""
        return f"{self.epoch.epochname}/{self.filename}"

    def __str__(self) -> str:
        return self.fileloc


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


class ReducedFit(BaseModel):
    """The calibrated, plate-solved product of one LIGHT raw frame."""

    rawfit = pw.ForeignKeyField(RawFit, unique=True, backref="reduced", on_delete="CASCADE")
    filename = pw.CharField()  # relative to the data directory
    masterbias = pw.ForeignKeyField(MasterBias, null=True, on_delete="SET NULL")
    masterdark = pw.ForeignKeyField(MasterDark, null=True, on_delete="SET NULL")
    masterflat = pw.ForeignKeyField(MasterFlat, null=True, on_delete="SET NULL")
    flags = pw.IntegerField(default=0)  # bits.ReducedFitFlags
    error = pw.TextField(default="")
    #: how the WCS was found: solved, quads, central-pair, header, header+shift (schema 6)
    astrometry_method = pw.TextField(default="")
    astrometry_detail = pw.TextField(default="")  # which attempt, and what it matched
    center_ra_deg = pw.FloatField(null=True)
    center_dec_deg = pw.FloatField(null=True)
    pixscale_arcsec = pw.FloatField(null=True)
    seeing_fwhm_arcsec = pw.FloatField(null=True)
    n_detected = pw.IntegerField(null=True)
    n_cosmic_pixels = pw.IntegerField(null=True)
    inputs_key = pw.CharField(default="")  # hash of what it was made from (skip if unchanged)
    modified = pw.DateTimeField(default=utcnow)


class SourceInField(BaseModel):
    """A catalog source that falls on a reduced frame, and where."""

    reducedfit = pw.ForeignKeyField(ReducedFit, backref="sources_in_field", on_delete="CASCADE")
    astrosource = pw.ForeignKeyField(AstroSource, on_delete="CASCADE")
    x_px = pw.FloatField()
    y_px = pw.FloatField()

    class Meta:
        indexes = ((("reducedfit", "astrosource"), True), (("astrosource",), False))


class AperPhotResult(BaseModel):
    """Aperture photometry of one source (one beam) on one reduced frame."""

    reducedfit = pw.ForeignKeyField(ReducedFit, backref="aperphot", on_delete="CASCADE")
    astrosource = pw.ForeignKeyField(AstroSource, on_delete="CASCADE")
    pair = pw.CharField(default="")  # "" single beam, "O" ordinary, "E" extraordinary
    aperture_px = pw.FloatField()
    annulus_in_px = pw.FloatField()
    annulus_out_px = pw.FloatField()
    x_px = pw.FloatField()
    y_px = pw.FloatField()
    flux_counts = pw.FloatField(null=True)
    flux_counts_err = pw.FloatField(null=True)
    bkg_counts = pw.FloatField(null=True)  # background inside the aperture
    bkg_counts_err = pw.FloatField(null=True)
    fwhm_px = pw.FloatField(null=True)
    flags = pw.IntegerField(default=0)  # bits.PhotometryFlags
    modified = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("reducedfit", "astrosource", "pair", "aperture_px"), True),
            (("astrosource",), False),
        )


class FieldStarFlux(BaseModel):
    """A bright field star (not in the catalog) measured on a single-beam polarimetric frame.

    The comparison stars of a polarizer-wheel sequence whose target has no
    catalog calibrators: matched across the sequence's frames by position, they
    measure the transparency of each frame (docs/polarimetry.md).
    """

    reducedfit = pw.ForeignKeyField(ReducedFit, backref="field_stars", on_delete="CASCADE")
    ra_deg = pw.FloatField()
    dec_deg = pw.FloatField()
    flux_counts = pw.FloatField(null=True)
    flux_counts_err = pw.FloatField(null=True)
    flags = pw.IntegerField(default=0)  # bits.PhotometryFlags

    class Meta:
        indexes = ((("reducedfit",), False),)


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


class RunLog(BaseModel):
    """One run of a command: what ran, when, and how it ended."""

    command = pw.CharField()
    arguments = JSONField(default=list)
    started_at = pw.DateTimeField(default=utcnow, index=True)
    finished_at = pw.DateTimeField(null=True)
    outcome = pw.CharField(default="running")  # running | ok | failed | interrupted
    detail = pw.TextField(default="")
    pid = pw.IntegerField(null=True)
    hostname = pw.CharField(default="")


class SentSummary(BaseModel):
    """Delivery state of one night's summary to one subscriber (sent at most once)."""

    night = pw.DateField()
    subscriber = pw.CharField()
    status = pw.CharField(default="pending")  # pending | sending | sent | failed | skipped
    attempts = pw.IntegerField(default=0)
    last_error = pw.TextField(default="")
    first_attempt_at = pw.DateTimeField(null=True)
    last_attempt_at = pw.DateTimeField(null=True)
    next_attempt_at = pw.DateTimeField(null=True)
    sent_at = pw.DateTimeField(null=True)
    message_id = pw.CharField(default="")

    class Meta:
        indexes = ((("night", "subscriber"), True),)


class Heartbeat(BaseModel):
    """Liveness of a long-running process (the daemon), updated while it runs."""

    name = pw.CharField(unique=True)
    pid = pw.IntegerField()
    hostname = pw.CharField(default="")
    started_at = pw.DateTimeField(default=utcnow)
    beat_at = pw.DateTimeField(default=utcnow)
    state = pw.CharField(default="")  # free text: idle, polling, reducing <night>, ...


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


#: Every table, in dependency order (create in this order, drop in reverse).
ALL_MODELS: tuple[type[BaseModel], ...] = (
    AstroSource,
    Calibrator,
    StandardPolarization,
    Epoch,
    RawFit,
    MasterBias,
    MasterDark,
    MasterFlat,
    MasterBiasInput,
    MasterDarkInput,
    MasterFlatInput,
    ReducedFit,
    SourceInField,
    AperPhotResult,
    FieldStarFlux,
    PhotoPolResult,
    PhotoPolMember,
    ImportedResult,
    RunLog,
    SentSummary,
    Heartbeat,
)
