"""The sequence computation on a handful of frames made here (no night simulated)."""

from __future__ import annotations

from iopreport.reduce.sequences import PolFrame, angle_key, build_sequences

JD0 = 2460000.5
MINUTE = 1 / 1440.0
ANGLES = (0.0, 22.5, 45.0, 67.5)


def _frames(target="BLLac", start=JD0, angles=ANGLES, exptime=60.0, step_min=2.0, band="R"):
    return [
        PolFrame(
            fileloc=f"OSN-T090/2023-02-24/{target}-{start:.4f}-{i}.fit",
            target=target,
            instrument="AndorT90",
            band=band,
            exptime=exptime,
            angle=angle,
            juliandate=start + i * step_min * MINUTE,
        )
        for i, angle in enumerate(angles)
    ]


def test_one_full_cycle_is_one_sequence():
    frames = _frames()
    assert build_sequences(reversed(frames), gap_minutes=10) == [frames]


def test_a_repeated_angle_starts_a_new_sequence():
    first = _frames()
    second = _frames(start=first[-1].juliandate + 2 * MINUTE)
    assert build_sequences(first + second, gap_minutes=10) == [first, second]


def test_a_gap_longer_than_allowed_splits_and_a_missing_angle_stays_incomplete():
    early = _frames(angles=ANGLES[:3])  # 67.5 missing
    late = _frames(start=early[-1].juliandate + 30 * MINUTE)
    sequences = build_sequences(early + late, gap_minutes=10)
    assert sequences == [early, late]
    assert [len(s) for s in sequences] == [3, 4]


def test_the_gap_counts_from_the_end_of_the_previous_exposure():
    # 12 min between starts of 5-min exposures: a 7-min gap, within 10 minutes
    frames = _frames(exptime=300.0, step_min=12.0)
    assert build_sequences(frames, gap_minutes=10) == [frames]
    assert len(build_sequences(frames, gap_minutes=6)) == 4


def test_targets_bands_and_exposures_never_mix():
    frames = _frames() + _frames(target="3C454.3") + _frames(band="V") + _frames(exptime=90.0)
    sequences = build_sequences(frames, gap_minutes=10)
    assert len(sequences) == 4
    assert all(len({f.key for f in s}) == 1 and len(s) == 4 for s in sequences)
    starts = [s[0].juliandate for s in sequences]
    assert starts == sorted(starts)


def test_angles_equal_modulo_360_are_one_setting():
    assert angle_key(-45.0) == angle_key(315.0) == angle_key(675.0)
    frames = _frames(angles=(0.0, 360.0))
    assert len(build_sequences(frames, gap_minutes=10)) == 2
