"""Synthetic 12-lead ECGs with clinically defined labels: the study's embedded default data.

No real training set can ship with the study, so this module simulates one. It is built to be
physiologically grounded rather than "noise with labels", because a classifier trained here is
later read on real ECGs (LUDB, real prints) and anything the simulator gets systematically
wrong becomes a shortcut that does not carry over.

Model
-----
* **Cardiac dipole.** Each beat is a sum of Gaussian-shaped waves of a 3-D heart vector
  (vectorcardiogram, Frank axes: X to the patient's left, Y to the feet, Z to the back):
  two atrial components for P (right then left atrium), four ventricular depolarisation
  components for QRS (septal, anterior, main left-ventricular, terminal basal), and two
  repolarisation components for an asymmetric T, plus an optional U wave. Every wave has its own
  timing, width, amplitude and direction, drawn per patient and per record.
* **Projection.** The vector is projected to the eight independent leads I, II, V1..V6 with the
  Dower transform (Dower, Machado and Osborne 1980), perturbed per patient to mimic torso shape
  and electrode placement; III, aVR, aVL and aVF then follow from Einthoven's and Goldberger's
  relations, so ``III = II - I`` and ``aVR + aVL + aVF = 0`` hold exactly (unless the
  ``independent_lead_gain_prob`` option rescales leads one by one, as LUDB's per-lead amplitude
  normalisation does).
* **Rhythm.** Beat times come from a target mean rate with respiratory sinus arrhythmia and
  beat-to-beat jitter (sinus) or from independent, irregular intervals (atrial fibrillation,
  where P waves are replaced by 4-9 Hz fibrillatory waves of an atrial dipole). QT follows the
  preceding RR interval (Bazett) beat by beat. Premature atrial and ventricular beats (PAC/PVC)
  appear in a share of records.
* **Noise.** Baseline wander (respiratory, slow drifts and a random walk), muscle (EMG) bursts,
  powerline hum at 50 or 60 Hz, electrode-motion steps, respiratory amplitude modulation, wide
  per-lead gain, and an occasional flat or very noisy lead.

Labels follow clinical criteria on the simulated parameters: 1dAVb PR > 200 ms; RBBB and LBBB
QRS >= 120 ms with their lead-specific morphology; SB < 60 bpm and ST > 100 bpm (sinus rhythm);
AF irregular RR with fibrillatory waves and no P wave. Label-negative records are often placed
just inside a threshold (PR 180-200 ms, incomplete bundle-branch patterns with QRS 100-118 ms,
rates of 60-65 and 95-100 bpm, marked sinus arrhythmia) so that the classes are not trivially
separable. :mod:`vizecg.data.ecg_measurements` checks the labels against the signals themselves.

Determinism
-----------
Record ``i`` depends only on ``(seed, start + i, options, prevalence)``: its parameters come from
``numpy.random.default_rng([seed, 0, index])``, its patient's from a generator keyed by the
patient, so any split of the index range over calls or workers yields identical records.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import signal as sps

from vizecg.contract import LABELS, N_SAMPLES, SAMPLE_RATE_HZ
from vizecg.data.records import RecordChunk

FS = float(SAMPLE_RATE_HZ)
DURATION_S = N_SAMPLES / FS
_TIME_S = np.arange(N_SAMPLES) / FS

#: Default label prevalences. With the exclusivity rules below they leave about 42% of the
#: records without any label, close to the share of normal ECGs in clinical test sets while
#: giving every class enough positives to learn from.
DEFAULT_PREVALENCE: dict[str, float] = {
    "1dAVb": 0.12, "RBBB": 0.12, "LBBB": 0.10, "SB": 0.12, "AF": 0.12, "ST": 0.12,
}

# Dower transform: rows are the independent leads I, II, V1..V6; columns the Frank X, Y, Z
# components of the heart vector (X left, Y feet, Z back). Coefficients from Dower et al.,
# Clin. Cardiol. 1980.
_DOWER = np.array([
    [0.632, -0.235, 0.059],   # I
    [0.235, 1.066, -0.132],   # II
    [-0.515, 0.157, -0.917],  # V1
    [0.044, 0.164, -1.387],   # V2
    [0.882, 0.098, -1.277],   # V3
    [1.213, 0.127, -0.601],   # V4
    [1.125, 0.127, -0.086],   # V5
    [0.831, 0.076, 0.230],    # V6
])
_N_INDEPENDENT = len(_DOWER)

# Band of surface EMG as it reaches a 400 Hz recording.
_EMG_SOS = sps.butter(2, [20.0, 150.0], btype="bandpass", fs=FS, output="sos")

# How many consecutive record indices share one patient-grouping draw (see _patient_of).
_PATIENT_BLOCK = 16

# Near-threshold windows in which ``label_noise`` may flip a label (clinical readers disagree
# most there): heart rate in bpm, PR and QRS in seconds.
_NEAR_SB_BPM = (55.0, 65.0)
_NEAR_ST_BPM = (95.0, 105.0)
_NEAR_PR_S = (0.185, 0.215)
_NEAR_QRS_S = (0.108, 0.132)


@dataclass(frozen=True)
class SyntheticOptions:
    """Knobs of the generator. Every record is a pure function of (seed, index, these options).

    label_noise: probability of flipping a label of a record whose parameter lies near that
        label's threshold (rate 55-65 / 95-105 bpm, PR 185-215 ms, QRS 108-132 ms), as
        disagreeing readers would; flips keep the exclusivity rules. 0 gives exact labels.
    multi_record_patient_fraction: share of records that belong to a patient with 2-4 records.
        Such records share the patient's anatomy (axis, wave shapes, lead gains), so a split
        that is not patient-wise leaks.
    borderline_fraction: share of label-negative records put just inside a threshold (PR
        180-200 ms, incomplete bundle-branch block with QRS 100-118 ms, 60-65 or 95-100 bpm).
    ectopy_prob: share of records with 1-3 premature beats (PACs in sinus rhythm, PVCs in any).
    noise_level: multiplies every noise amplitude; 0 gives clean signals (useful in tests).
    bad_lead_prob: share of records with one flat or very noisy lead.
    independent_lead_gain_prob: share of records whose 12 leads are rescaled independently
        after derivation (breaks Einthoven's relation on purpose, as LUDB's per-lead
        normalisation does); all other records keep III = II - I exactly.
    lead_gain_range: per-lead gain range (log-uniform) of the eight independent leads.
    """

    label_noise: float = 0.0
    multi_record_patient_fraction: float = 0.25
    borderline_fraction: float = 0.35
    ectopy_prob: float = 0.15
    noise_level: float = 1.0
    bad_lead_prob: float = 0.03
    independent_lead_gain_prob: float = 0.1
    lead_gain_range: tuple[float, float] = (0.45, 2.2)

    def __post_init__(self) -> None:
        for name in ("label_noise", "multi_record_patient_fraction", "borderline_fraction",
                     "ectopy_prob", "bad_lead_prob", "independent_lead_gain_prob"):
            value = getattr(self, name)
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"synthetic option {name}={value!r} must lie in [0, 1]")
        if self.noise_level < 0:
            raise ValueError(f"synthetic option noise_level={self.noise_level!r} must be >= 0")
        low, high = self.lead_gain_range
        if not 0 < low <= high:
            raise ValueError(f"synthetic option lead_gain_range={self.lead_gain_range!r} must be 0 < low <= high")

    @classmethod
    def from_kwargs(cls, options: Mapping[str, object]) -> "SyntheticOptions":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown synthetic generator option(s) {unknown}; known: {sorted(known)}")
        values = dict(options)
        if "lead_gain_range" in values:
            values["lead_gain_range"] = tuple(float(v) for v in values["lead_gain_range"])  # type: ignore[union-attr]
        return cls(**values)  # type: ignore[arg-type]


def resolve_prevalence(prevalence: Mapping[str, float] | None) -> dict[str, float]:
    """Defaults overridden by ``prevalence`` (by label name), checked against the exclusivity rules.

    AF, SB and ST are mutually exclusive rhythms, so their prevalences must sum to at most 1;
    RBBB and LBBB exclude each other; 1dAVb needs sinus rhythm, so it cannot exceed 1 - AF.
    """
    resolved = dict(DEFAULT_PREVALENCE)
    for name, value in (prevalence or {}).items():
        if name not in resolved:
            raise ValueError(f"prevalence names unknown label {name!r}; labels are {list(LABELS)}")
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"prevalence of {name} must lie in [0, 1], got {value!r}")
        resolved[name] = float(value)
    if resolved["AF"] + resolved["SB"] + resolved["ST"] > 1.0 + 1e-9:
        raise ValueError("prevalences of the exclusive rhythms AF, SB and ST sum to more than 1")
    if resolved["RBBB"] + resolved["LBBB"] > 1.0 + 1e-9:
        raise ValueError("prevalences of RBBB and LBBB (mutually exclusive) sum to more than 1")
    if resolved["1dAVb"] > 1.0 - resolved["AF"] + 1e-9:
        raise ValueError("1dAVb needs sinus rhythm: its prevalence cannot exceed 1 - prevalence of AF")
    return resolved


# --------------------------------------------------------------------------------------------
# Patients
# --------------------------------------------------------------------------------------------

def _patient_of(seed: int, index: int, fraction_multi: float) -> tuple[int, int]:
    """(block, patient number in block) of record ``index``.

    Indices are grouped in fixed blocks of 16; each block is cut into patients of 1 record, or
    of 2-4 records with the probability that gives ``fraction_multi`` of records in multi-record
    patients. The cut depends only on (seed, block), so it is the same however the index range
    is split.
    """
    block = index // _PATIENT_BLOCK
    if fraction_multi <= 0:
        return block, index % _PATIENT_BLOCK
    rng = np.random.default_rng([seed, 1, block])
    # A patient is single with probability s; multi patients have 3 records on average, so the
    # share of records in multi patients is 3(1-s) / (s + 3(1-s)); solve for s.
    p_single = (3.0 - 3.0 * fraction_multi) / (3.0 - 2.0 * fraction_multi)
    sizes = np.where(rng.random(_PATIENT_BLOCK) < p_single, 1, rng.integers(2, 5, _PATIENT_BLOCK))
    owner = np.repeat(np.arange(_PATIENT_BLOCK), sizes)[:_PATIENT_BLOCK]
    return block, int(owner[index % _PATIENT_BLOCK])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rotation(frontal: float, horizontal: float, sagittal: float) -> np.ndarray:
    """Rotation of the heart vector: about Z (frontal-plane axis), Y (transition zone), X."""
    cz, sz = np.cos(frontal), np.sin(frontal)
    cy, sy = np.cos(horizontal), np.sin(horizontal)
    cx, sx = np.cos(sagittal), np.sin(sagittal)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx


@dataclass
class _Patient:
    """Anatomy shared by every record of one patient."""

    rotation: np.ndarray          # (3, 3) heart orientation (electrical axis, transition zone)
    wave_directions: np.ndarray   # (8, 3) perturbations added to the canonical wave directions
    amplitudes: dict              # canonical wave amplitudes in mV
    dower: np.ndarray             # (8, 3) perturbed Dower matrix (torso, electrode placement)
    lead_gain: np.ndarray         # (8,) per independent lead
    qtc_s: float
    p_duration_s: float
    t_width_s: float
    has_u_wave: bool


def _draw_patient(rng: np.random.Generator, options: SyntheticOptions) -> _Patient:
    # Frontal-plane axis: mostly normal (-30..+90 deg), with left and right deviation tails.
    frontal = np.deg2rad(np.clip(rng.normal(5.0, 28.0), -75.0, 110.0))
    rotation = _rotation(frontal, np.deg2rad(rng.normal(0.0, 18.0)), np.deg2rad(rng.normal(0.0, 12.0)))
    amplitudes = {
        "p": rng.uniform(0.05, 0.2), "q": rng.uniform(0.03, 0.35), "r_ant": rng.uniform(0.15, 0.9),
        "r": rng.lognormal(np.log(1.4), 0.35), "s": rng.uniform(0.1, 0.9),
        "t": rng.uniform(0.12, 0.6), "u": rng.uniform(0.015, 0.07),
    }
    low, high = options.lead_gain_range
    return _Patient(
        rotation=rotation,
        wave_directions=rng.normal(0.0, 0.22, size=(8, 3)),
        amplitudes=amplitudes,
        dower=_DOWER * rng.lognormal(0.0, 0.12, size=_DOWER.shape) + rng.normal(0.0, 0.06, size=_DOWER.shape),
        lead_gain=np.exp(rng.uniform(np.log(low), np.log(high), size=_N_INDEPENDENT)),
        qtc_s=rng.uniform(0.37, 0.45),
        p_duration_s=rng.uniform(0.08, 0.115),
        t_width_s=rng.uniform(0.03, 0.055),
        has_u_wave=bool(rng.random() < 0.4),
    )


# --------------------------------------------------------------------------------------------
# Labels and their defining parameters
# --------------------------------------------------------------------------------------------

@dataclass
class _Rhythm:
    kind: str                  # "sinus" or "af"
    heart_rate_bpm: float
    pr_s: float                # 0 for AF
    qrs_s: float
    conduction: str            # "normal", "iRBBB", "iLBBB", "RBBB", "LBBB"
    sinus_arrhythmia: float    # relative RR modulation amplitude (sinus)
    af_rr_cv: float            # RR variability (AF)


def _draw_labels_and_rhythm(rng: np.random.Generator, prevalence: dict[str, float],
                            options: SyntheticOptions) -> tuple[np.ndarray, _Rhythm]:
    p_af, p_sb, p_st = prevalence["AF"], prevalence["SB"], prevalence["ST"]
    u = rng.random()
    rhythm = "AF" if u < p_af else "SB" if u < p_af + p_sb else "ST" if u < p_af + p_sb + p_st else "NSR"
    avb_given_sinus = prevalence["1dAVb"] / max(1.0 - p_af, 1e-9)
    avb = rhythm != "AF" and rng.random() < avb_given_sinus
    v = rng.random()
    block = "RBBB" if v < prevalence["RBBB"] else "LBBB" if v < prevalence["RBBB"] + prevalence["LBBB"] else ""
    border = options.borderline_fraction

    # Heart rate (for AF: ventricular rate).
    if rhythm == "SB":
        hr = 59.5 - 22.0 * rng.beta(1.4, 3.0)
    elif rhythm == "ST":
        hr = 100.5 + 55.0 * rng.beta(1.3, 3.5)
    elif rhythm == "AF":
        hr = float(np.clip(88.0 * rng.lognormal(0.0, 0.25), 48.0, 165.0))
    else:
        w = rng.random()
        if w < border / 2:
            hr = rng.uniform(60.5, 65.0)
        elif w < border:
            hr = rng.uniform(95.0, 99.5)
        else:
            hr = float(np.clip(rng.normal(76.0, 10.0), 61.0, 99.0))

    # PR interval (sinus only).
    if rhythm == "AF":
        pr = 0.0
    elif avb:
        pr = 0.205 + 0.12 * rng.beta(1.3, 3.0)
    elif rng.random() < border:
        pr = rng.uniform(0.180, 0.197)
    else:
        pr = rng.uniform(0.115, 0.185)
    # PR shortens at high rates: keep the P wave after the preceding T wave (QT by Bazett with a
    # typical QTc of 0.41 s). Only 1dAVb at a high rate may still fuse P with T, as in real
    # tracings.
    if rhythm != "AF":
        rr = 60.0 / hr
        room = rr - 0.41 * np.sqrt(rr)
        pr = min(pr, max(0.205, room - 0.01)) if avb else min(pr, max(0.11, room - 0.04))

    # QRS duration and conduction pattern.
    if block == "RBBB":
        qrs, conduction = 0.122 + 0.05 * rng.beta(1.5, 2.5), "RBBB"
    elif block == "LBBB":
        qrs, conduction = 0.126 + 0.06 * rng.beta(1.5, 2.5), "LBBB"
    elif rng.random() < border * 0.6:
        qrs, conduction = rng.uniform(0.100, 0.116), ("iRBBB" if rng.random() < 0.6 else "iLBBB")
    else:
        qrs, conduction = rng.uniform(0.072, 0.104), "normal"

    sinus_arrhythmia = rng.uniform(0.0, 0.03) if rng.random() > border else rng.uniform(0.03, 0.08)
    af_cv = rng.uniform(0.12, 0.3)

    labels = np.array([avb, block == "RBBB", block == "LBBB", rhythm == "SB", rhythm == "AF", rhythm == "ST"],
                      dtype=np.uint8)
    kind = "af" if rhythm == "AF" else "sinus"
    return labels, _Rhythm(kind, float(hr), float(pr), float(qrs), conduction, float(sinus_arrhythmia), float(af_cv))


def _flip_near_threshold(rng: np.random.Generator, labels: np.ndarray, rhythm: _Rhythm,
                         p_flip: float) -> np.ndarray:
    """Flip labels of near-threshold records with probability ``p_flip``, keeping exclusivity."""
    labels = labels.copy()
    hr, pr, qrs, conduction = rhythm.heart_rate_bpm, rhythm.pr_s, rhythm.qrs_s, rhythm.conduction
    i_avb, i_rbbb, i_lbbb, i_sb, i_af, i_st = range(6)
    draws = rng.random(4)  # always four draws, so the stream does not depend on the branch
    sinus = labels[i_af] == 0
    if sinus and _NEAR_SB_BPM[0] <= hr <= _NEAR_SB_BPM[1] and draws[0] < p_flip and labels[i_st] == 0:
        labels[i_sb] ^= 1
    if sinus and _NEAR_ST_BPM[0] <= hr <= _NEAR_ST_BPM[1] and draws[1] < p_flip and labels[i_sb] == 0:
        labels[i_st] ^= 1
    if sinus and _NEAR_PR_S[0] <= pr <= _NEAR_PR_S[1] and draws[2] < p_flip:
        labels[i_avb] ^= 1
    if _NEAR_QRS_S[0] <= qrs <= _NEAR_QRS_S[1] and draws[3] < p_flip:
        if conduction in ("RBBB", "iRBBB"):
            labels[i_rbbb] ^= 1
        elif conduction in ("LBBB", "iLBBB"):
            labels[i_lbbb] ^= 1
    return labels


# --------------------------------------------------------------------------------------------
# Beat morphology: components (centre relative to QRS onset, width, 3-D amplitude vector)
# --------------------------------------------------------------------------------------------

# Canonical directions (Frank axes) before the patient's rotation and perturbation.
_DIR = {
    "p_ra": np.array([0.15, 0.75, -0.65]), "p_la": np.array([0.8, 0.45, 0.35]),
    "q": np.array([-0.55, 0.25, -0.8]), "r_ant": np.array([0.35, 0.45, -0.8]),
    "r": np.array([0.75, 0.5, 0.35]), "s": np.array([-0.4, -0.2, 0.85]),
    "t": np.array([0.55, 0.65, -0.35]),
    "rbbb_lv": np.array([0.7, 0.5, 0.45]), "rbbb_term": np.array([-0.65, 0.05, -0.75]),
    "rbbb_term2": np.array([-0.8, -0.35, -0.45]),
    "rbbb_t": np.array([0.55, 0.45, 0.6]),
    "lbbb_init": np.array([0.2, 0.1, -0.95]), "lbbb_r": np.array([0.8, 0.25, 0.55]),
    "lbbb_r2": np.array([0.65, 0.1, 0.75]),
    "lbbb_t": np.array([-0.7, -0.2, -0.65]),
}
_PERTURB_SLOT = {"p_ra": 0, "p_la": 1, "q": 2, "r_ant": 3, "r": 4, "s": 5, "t": 6, "rbbb_term": 7,
                 "rbbb_lv": 4, "rbbb_t": 6, "rbbb_term2": 7, "lbbb_r2": 4, "lbbb_init": 3, "lbbb_r": 4, "lbbb_t": 6}


class _Components:
    """Growable list of Gaussian waves of one beat type, relative to QRS onset (seconds)."""

    def __init__(self) -> None:
        self.centre: list[float] = []
        self.width: list[float] = []
        self.vector: list[np.ndarray] = []
        self.repolarisation: list[bool] = []

    def add(self, centre: float, width: float, amplitude: float, direction: np.ndarray,
            repolarisation: bool = False) -> None:
        self.centre.append(centre)
        self.width.append(width)
        self.vector.append(amplitude * direction)
        self.repolarisation.append(repolarisation)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(self.centre), np.asarray(self.width), np.asarray(self.vector).reshape(-1, 3),
                np.asarray(self.repolarisation, dtype=bool))


def _direction(patient: _Patient, rng: np.random.Generator, name: str, spread: float = 0.12) -> np.ndarray:
    base = _DIR[name] + patient.wave_directions[_PERTURB_SLOT[name]] + rng.normal(0.0, spread, 3)
    return patient.rotation @ _unit(base)


def _p_wave(c: _Components, patient: _Patient, rng: np.random.Generator, pr: float,
            ectopic: bool = False) -> None:
    """Two atrial components. A wave is taken to start and end 2.5 sigma from its centre (where it
    has fallen to 4% of its peak), so the P wave spans [-pr, -pr + duration]; at least 40 ms of
    PR segment is kept before the QRS."""
    dur = min(patient.p_duration_s * rng.uniform(0.95, 1.05), pr - 0.04)
    sigma = 0.14 * dur
    edge = 2.5 * sigma
    amp = patient.amplitudes["p"] * rng.uniform(0.85, 1.15)
    if ectopic:  # a premature atrial focus: other direction, often low-atrial (inverted in II)
        direction = _unit(rng.normal(0.0, 1.0, 3) + np.array([0.0, -0.5, 0.0]))
        c.add(-pr + edge, sigma, amp, direction)
        c.add(-pr + dur - edge, sigma, amp * 0.8, direction)
        return
    c.add(-pr + edge, sigma, amp, _direction(patient, rng, "p_ra"))
    c.add(-pr + dur - edge, sigma, amp * rng.uniform(0.7, 1.2), _direction(patient, rng, "p_la"))


def _qrs_t(c: _Components, patient: _Patient, rng: np.random.Generator, rhythm: _Rhythm,
           qt: float) -> None:
    """Ventricular depolarisation over [0, qrs] and repolarisation (T end at ``qt``).

    The first and last QRS components sit 2.5 sigma inside the QRS edges, and wide complexes are
    built from several narrower components rather than a few broad ones, so that the complex
    ends at a visible J point as real ones do instead of fading out.
    """
    a = patient.amplitudes
    d = rhythm.qrs_s
    kind = rhythm.conduction
    t_dir_name = "t"
    t_amp = a["t"] * rng.uniform(0.85, 1.15)
    if kind in ("normal", "iRBBB"):
        c.add(0.175 * d, 0.07 * d, a["q"], _direction(patient, rng, "q"))
        c.add(0.36 * d, 0.1 * d, a["r_ant"], _direction(patient, rng, "r_ant"))
        if kind == "normal":
            c.add(0.52 * d, 0.1 * d, a["r"], _direction(patient, rng, "r"))
            c.add(0.8125 * d, 0.075 * d, a["s"], _direction(patient, rng, "s"))
        else:  # incomplete RBBB: rSr' in V1 from a small, late, right-anterior component
            c.add(0.47 * d, 0.1 * d, a["r"], _direction(patient, rng, "r"))
            c.add(0.8 * d, 0.08 * d, rng.uniform(0.2, 0.55), _direction(patient, rng, "rbbb_term"))
    elif kind == "RBBB":
        # Septum and left ventricle activate normally, the right ventricle late and slowly:
        # a broad terminal vector to the right and front (R' in V1, wide slurred S in I/V6) and
        # secondary repolarisation opposite to it (T inversion in V1-V3).
        c.add(0.15 * d, 0.06 * d, a["q"] + 0.05, _direction(patient, rng, "q"))
        c.add(0.35 * d, 0.1 * d, a["r"] * rng.uniform(0.7, 1.0), _direction(patient, rng, "rbbb_lv"))
        terminal = rng.uniform(0.5, 1.3)
        # Two terminal components whose direction turns (anterior, then right and superior),
        # as the vector keeps rotating through the slow right-ventricular activation.
        c.add(0.6 * d, 0.1 * d, terminal, _direction(patient, rng, "rbbb_term"))
        c.add(0.82 * d, 0.072 * d, terminal * rng.uniform(0.7, 1.1), _direction(patient, rng, "rbbb_term2"))
        t_dir_name = "rbbb_t"
    elif kind in ("LBBB", "iLBBB"):
        # Septum activates right-to-left (no septal q in I/V6), the left ventricle late through
        # myocardium: a broad, notched leftward-posterior R (QS or rS in V1).
        if rng.random() < 0.4:
            c.add(0.15 * d, 0.06 * d, rng.uniform(0.05, 0.2), _direction(patient, rng, "lbbb_init"))
        r_amp = a["r"] * rng.uniform(0.8, 1.3)
        if kind == "LBBB":
            c.add(0.3 * d, 0.11 * d, r_amp, _direction(patient, rng, "lbbb_r"))
            c.add(0.65 * d, 0.11 * d, r_amp * rng.uniform(0.7, 1.2), _direction(patient, rng, "lbbb_r2"))
            c.add(0.85 * d, 0.06 * d, r_amp * rng.uniform(0.2, 0.5), _direction(patient, rng, "lbbb_r"))
            # Discordant ST-T: ST deviation and T opposite to the main QRS vector.
            t_dir_name = "lbbb_t"
            t_amp = rng.uniform(0.3, 0.8)
            c.add(d + 0.1, 0.04, t_amp * rng.uniform(0.2, 0.45), _direction(patient, rng, "lbbb_t"),
                  repolarisation=True)
        else:
            c.add(0.45 * d, 0.14 * d, r_amp, _direction(patient, rng, "lbbb_r"))
            c.add(0.8 * d, 0.08 * d, a["s"] * 0.5, _direction(patient, rng, "s"))
    else:
        raise ValueError(f"unknown conduction pattern {kind!r}")

    t_dir = _direction(patient, rng, t_dir_name)
    t_sigma = patient.t_width_s * rng.uniform(0.9, 1.1)
    t_peak = max(qt - 2.2 * t_sigma, d + 0.08)
    c.add(t_peak, t_sigma, t_amp, t_dir, repolarisation=True)
    c.add(t_peak - 1.3 * t_sigma, 1.6 * t_sigma, 0.3 * t_amp, t_dir, repolarisation=True)
    if patient.has_u_wave:
        c.add(t_peak + 2.2 * t_sigma + 0.08, 0.03, a["u"], t_dir, repolarisation=True)


def _pvc(c: _Components, rng: np.random.Generator) -> None:
    """A premature ventricular beat: wide bizarre QRS of random direction, discordant T, no P."""
    d = rng.uniform(0.13, 0.2)
    direction = _unit(rng.normal(0.0, 1.0, 3))
    amp = rng.uniform(1.0, 2.5)
    c.add(0.3 * d, 0.15 * d, amp, direction)
    c.add(0.68 * d, 0.15 * d, amp * rng.uniform(0.4, 1.0), _unit(direction + rng.normal(0.0, 0.4, 3)))
    c.add(d + 0.17, 0.06, rng.uniform(0.3, 0.8), -direction, repolarisation=True)


# --------------------------------------------------------------------------------------------
# Beat times
# --------------------------------------------------------------------------------------------

def _beat_times(rng: np.random.Generator, rhythm: _Rhythm, resp_hz: float) -> np.ndarray:
    """QRS onset times (s) from before the window start to after its end."""
    mean_rr = 60.0 / rhythm.heart_rate_bpm
    n = int(np.ceil((DURATION_S + 3.0) / (mean_rr * 0.6))) + 4
    if rhythm.kind == "af":
        # Irregularly irregular: independent intervals, log-normal with the record's spread.
        rr = rng.lognormal(0.0, rhythm.af_rr_cv, n)
        rr = np.maximum(rr / rr.mean() * mean_rr, 0.28)
    else:
        beat_index = np.arange(n)
        phase = rng.uniform(0, 2 * np.pi)
        resp = np.sin(2 * np.pi * resp_hz * beat_index * mean_rr + phase)
        drift = np.cumsum(rng.normal(0.0, 0.004, n))
        rr = 1.0 + rhythm.sinus_arrhythmia * resp + rng.normal(0.0, 0.008, n) + drift - drift.mean()
        rr = rr / rr.mean() * mean_rr
    start = -rng.uniform(1.0, 1.0 + mean_rr)
    return start + np.concatenate([[0.0], np.cumsum(rr[:-1])])


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

def _render_components(centre_s: np.ndarray, width_s: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Sum of Gaussian waves on the 400 Hz grid: (N_SAMPLES, 3). Each wave only near its centre."""
    half = int(np.ceil(3.5 * width_s.max() * FS))
    offsets = np.arange(-half, half + 1)
    centre = centre_s * FS
    index = np.rint(centre).astype(np.int64)[:, None] + offsets[None, :]
    z = (index - centre[:, None]) / (width_s[:, None] * FS)
    shape = np.exp(-0.5 * z * z)
    inside = (index >= 0) & (index < N_SAMPLES) & (np.abs(z) < 3.5)
    flat_index = index[inside]
    flat_shape = shape[inside]
    weights_for = np.repeat(vector, inside.sum(axis=1), axis=0)
    out = np.empty((N_SAMPLES, 3))
    for axis in range(3):
        out[:, axis] = np.bincount(flat_index, weights=flat_shape * weights_for[:, axis], minlength=N_SAMPLES)
    return out


def _fibrillatory_waves(rng: np.random.Generator) -> np.ndarray:
    """Atrial fibrillation f-waves as an atrial dipole: (N_SAMPLES, 3).

    Two to three oscillators at 4-9 Hz whose frequency wanders slowly and whose amplitude waxes
    and wanes, each with its own direction, mostly toward V1 and the inferior leads.
    """
    out = np.zeros((N_SAMPLES, 3))
    amplitude = rng.uniform(0.02, 0.15)  # fine to coarse AF, in mV
    for _ in range(rng.integers(2, 4)):
        base_hz = rng.uniform(4.0, 9.0)
        wander = np.cumsum(rng.normal(0.0, 1.0, 64))
        wander = np.interp(np.linspace(0, 63, N_SAMPLES), np.arange(64), wander - wander.mean())
        freq = np.clip(base_hz + 0.35 * wander, 3.5, 10.0)
        phase = 2 * np.pi * np.cumsum(freq) / FS + rng.uniform(0, 2 * np.pi)
        envelope = 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * _TIME_S + rng.uniform(0, 2 * np.pi))
        direction = _unit(np.array([0.1, 0.6, -0.8]) + rng.normal(0.0, 0.35, 3))
        out += (amplitude * envelope * np.sin(phase))[:, None] * direction[None, :]
    return out


_COARSE_STEP = 16  # slow components are drawn at 25 Hz and linearly interpolated to 400 Hz
_COARSE_T = np.arange(N_SAMPLES // _COARSE_STEP + 1) * _COARSE_STEP / FS
_FINE_WEIGHT = (np.arange(_COARSE_STEP) / _COARSE_STEP)[None, :, None]


def _upsample_slow(coarse: np.ndarray) -> np.ndarray:
    """(N_SAMPLES/16 + 1, L) at 25 Hz -> (N_SAMPLES, L) at 400 Hz by linear interpolation."""
    fine = coarse[:-1, None, :] * (1.0 - _FINE_WEIGHT) + coarse[1:, None, :] * _FINE_WEIGHT
    return fine.reshape(N_SAMPLES, coarse.shape[1])


def _noise(rng: np.random.Generator, level: float, resp_hz: float) -> np.ndarray:
    """Additive noise on the eight independent leads: (N_SAMPLES, 8) in mV."""
    n_leads = _N_INDEPENDENT
    # Baseline wander (below 1 Hz, so drawn on a coarse grid): a respiratory component shared by
    # the leads with lead-specific weight, slow sinusoidal drifts and a random walk per lead.
    wander_scale = rng.uniform(0.0, 0.35)
    tc = _COARSE_T[:, None]
    slow = (wander_scale * rng.normal(0.0, 0.5, n_leads)) * np.sin(2 * np.pi * resp_hz * tc + rng.uniform(0, 2 * np.pi))
    freqs = rng.uniform(0.03, 0.5, (2, n_leads))
    amps = wander_scale * rng.uniform(0.0, 1.0, (2, n_leads))
    phases = rng.uniform(0, 2 * np.pi, (2, n_leads))
    for k in range(2):
        slow += amps[k] * np.sin(2 * np.pi * freqs[k] * tc + phases[k])
    walk = np.cumsum(rng.standard_normal((len(_COARSE_T), n_leads)), axis=0)
    walk -= np.linspace(walk[0], walk[-1], len(_COARSE_T))
    slow += walk * (wander_scale * rng.uniform(0.0, 0.03))
    out = _upsample_slow(slow)
    # Broadband instrumentation noise, always present.
    out += rng.standard_normal((N_SAMPLES, n_leads), dtype=np.float32) * rng.uniform(0.002, 0.01)
    # Muscle (EMG) noise in bursts.
    if rng.random() < 0.5:
        emg = sps.sosfilt(_EMG_SOS, rng.standard_normal((N_SAMPLES, n_leads), dtype=np.float32), axis=0)
        burst_centre = rng.uniform(0, DURATION_S, 3)
        burst_width = rng.uniform(0.3, 1.5, 3)
        envelope = 0.3 + _upsample_slow(np.exp(-0.5 * ((tc - burst_centre) / burst_width) ** 2).sum(axis=1, keepdims=True))
        out += emg * envelope * (rng.uniform(0.005, 0.05) * rng.uniform(0.3, 1.5, n_leads))
    # Powerline interference: sin(wt + phi) = sin(wt) cos(phi) + cos(wt) sin(phi).
    if rng.random() < 0.35:
        mains = 50.0 if rng.random() < 0.5 else 60.0
        amp = rng.uniform(0.003, 0.06) * rng.uniform(0.2, 1.0, n_leads)
        phase = rng.uniform(0, 2 * np.pi, n_leads)
        wt = 2 * np.pi * mains * _TIME_S
        out += np.sin(wt)[:, None] * (amp * np.cos(phase)) + np.cos(wt)[:, None] * (amp * np.sin(phase))
    # Electrode motion: baseline steps that recover exponentially, on one or two leads.
    if rng.random() < 0.12:
        for _ in range(rng.integers(1, 4)):
            lead = rng.integers(0, n_leads)
            onset = rng.uniform(0, DURATION_S)
            tau = rng.uniform(0.1, 0.8)
            after = _TIME_S >= onset
            out[after, lead] += rng.normal(0.0, 0.6) * np.exp(-(_TIME_S[after] - onset) / tau)
    return out * level


def _derive_limb_leads(independent: np.ndarray) -> np.ndarray:
    """(T, 8) leads I, II, V1..V6 -> (T, 12) in contract order, by Einthoven and Goldberger."""
    lead_i, lead_ii = independent[:, 0], independent[:, 1]
    out = np.empty((independent.shape[0], 12))
    out[:, 0] = lead_i
    out[:, 1] = lead_ii
    out[:, 2] = lead_ii - lead_i
    out[:, 3] = -(lead_i + lead_ii) / 2
    out[:, 4] = lead_i - lead_ii / 2
    out[:, 5] = lead_ii - lead_i / 2
    out[:, 6:] = independent[:, 2:]
    return out


def _labels_of(seed: int, index: int, prevalence: dict[str, float],
               options: SyntheticOptions) -> tuple[np.ndarray, _Rhythm, np.random.Generator]:
    """Labels and rhythm of record ``index``, and the record's generator where the signal goes on."""
    rng = np.random.default_rng([seed, 0, index])
    labels, rhythm = _draw_labels_and_rhythm(rng, prevalence, options)
    if options.label_noise > 0:
        # A separate stream, so that label noise changes labels and never the signals.
        labels = _flip_near_threshold(np.random.default_rng([seed, 3, index]), labels, rhythm,
                                      options.label_noise)
    return labels, rhythm, rng


def _synthesize(seed: int, index: int, prevalence: dict[str, float],
                options: SyntheticOptions) -> tuple[np.ndarray, np.ndarray]:
    block, patient_number = _patient_of(seed, index, options.multi_record_patient_fraction)
    patient = _draw_patient(np.random.default_rng([seed, 2, block, patient_number]), options)
    labels, rhythm, rng = _labels_of(seed, index, prevalence, options)

    resp_hz = rng.uniform(0.15, 0.35)
    onsets = _beat_times(rng, rhythm, resp_hz)
    n_beats = len(onsets)
    mean_rr = 60.0 / rhythm.heart_rate_bpm
    qt_ref = patient.qtc_s * np.sqrt(mean_rr) + max(rhythm.qrs_s - 0.09, 0.0)

    # Beat types: 0 regular, 1 PAC (sinus only), 2 PVC.
    beat_type = np.zeros(n_beats, dtype=np.int64)
    has_ectopy = rng.random() < options.ectopy_prob
    ectopy_draws = (rng.integers(2, n_beats - 2, 3), rng.random(3), rng.uniform(0.6, 0.8, 3), rng.integers(1, 4))
    if has_ectopy:
        positions, kinds, coupling, count = ectopy_draws
        for pos, kind, frac in zip(positions[:count], kinds[:count], coupling[:count]):
            if beat_type[pos - 1] or beat_type[pos + 1] or beat_type[pos]:
                continue
            rr = onsets[pos] - onsets[pos - 1]
            advance = (1.0 - frac) * rr
            if rhythm.kind == "sinus" and kind < 0.5:
                beat_type[pos] = 1
                onsets[pos:] -= advance * np.r_[1.0, np.full(n_beats - pos - 1, 0.8)]  # sinus node reset
            else:
                beat_type[pos] = 2
                onsets[pos] -= advance  # full compensatory pause

    rr_prev = np.diff(onsets, prepend=onsets[0] - mean_rr)
    rr_smooth = 0.5 * rr_prev + 0.5 * np.r_[mean_rr, rr_prev[:-1]]
    qt = np.clip(patient.qtc_s * np.sqrt(rr_smooth) + max(rhythm.qrs_s - 0.09, 0.0), 0.24, 0.62)

    centres, widths, vectors = [], [], []
    for type_id in (0, 1, 2):
        beats = np.flatnonzero(beat_type == type_id)
        if beats.size == 0:
            continue
        comp = _Components()
        if type_id == 2:
            _pvc(comp, rng)
        else:
            if rhythm.kind == "sinus":
                _p_wave(comp, patient, rng, rhythm.pr_s if type_id == 0 else max(rhythm.pr_s - 0.02, 0.1),
                        ectopic=type_id == 1)
            _qrs_t(comp, patient, rng, rhythm, qt_ref)
        centre, width, vector, repol = comp.arrays()
        beat_centres = onsets[beats, None] + centre[None, :] + repol[None, :] * (qt[beats] - qt_ref)[:, None]
        jitter = 1.0 + rng.normal(0.0, 0.03, (beats.size, len(centre), 1))
        centres.append(beat_centres.ravel())
        widths.append(np.broadcast_to(width, beat_centres.shape).ravel())
        vectors.append((vector[None, :, :] * jitter).reshape(-1, 3))
    centres, widths, vectors = np.concatenate(centres), np.concatenate(widths), np.concatenate(vectors)
    # Narrow (P, QRS) and broad (T) waves separately, so narrow ones are not evaluated over the
    # broad ones' support.
    narrow = widths < 0.03
    vcg = _render_components(centres[narrow], widths[narrow], vectors[narrow])
    vcg += _render_components(centres[~narrow], widths[~narrow], vectors[~narrow])

    # Respiration moves the heart and changes thoracic impedance: amplitude modulation.
    vcg *= 1.0 + rng.uniform(0.0, 0.1) * np.sin(2 * np.pi * resp_hz * _TIME_S + rng.uniform(0, 2 * np.pi))[:, None]
    if rhythm.kind == "af":
        vcg += _fibrillatory_waves(rng)

    record_gain = rng.lognormal(0.0, 0.25) * patient.lead_gain * rng.lognormal(0.0, 0.08, _N_INDEPENDENT)
    independent = (vcg @ patient.dower.T) * record_gain
    independent += _noise(rng, options.noise_level, resp_hz)

    bad_draw, bad_lead, bad_kind = rng.random(), rng.integers(0, _N_INDEPENDENT), rng.random()
    if bad_draw < options.bad_lead_prob:
        if bad_kind < 0.5:  # disconnected electrode read as a flat line with a little noise
            independent[:, bad_lead] = rng.normal(0.0, 0.003, N_SAMPLES)
        else:
            independent[:, bad_lead] += 0.15 * sps.sosfilt(_EMG_SOS, rng.normal(0.0, 1.0, N_SAMPLES))
    leads = _derive_limb_leads(independent)

    independent_gain = rng.random() < options.independent_lead_gain_prob
    per_lead = np.exp(rng.uniform(np.log(0.4), np.log(2.5), 12))
    if independent_gain:
        leads *= per_lead
    peak = np.abs(leads).max()
    if peak > 15.0:  # keep well inside the contract's +-20 mV
        leads *= 15.0 / peak
    return leads.astype(np.float32), labels


def _check_range(n: int, seed: int, start: int) -> None:
    for name, value in (("n", n), ("seed", seed), ("start", start)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"synthetic generator: {name} must be an int, got {type(value).__name__}")
        if value < 0:
            raise ValueError(f"synthetic generator: {name} must be >= 0, got {value}")


def generate(n: int, seed: int, *, start: int = 0, prevalence: dict | None = None,
             **options) -> tuple[np.ndarray, np.ndarray]:
    """Generate records ``start .. start + n - 1`` of the synthetic dataset ``seed``.

    Returns signals float32 ``(n, 4096, 12)`` in mV at 400 Hz (leads I, II, III, aVR, aVL, aVF,
    V1..V6) and labels uint8 ``(n, 6)`` (1dAVb, RBBB, LBBB, SB, AF, ST). ``prevalence`` overrides
    :data:`DEFAULT_PREVALENCE` by label name; ``options`` are the fields of
    :class:`SyntheticOptions`. Record ``start + i`` is the same whatever ``n`` and ``start``.
    """
    _check_range(n, seed, start)
    resolved = resolve_prevalence(prevalence)
    opts = SyntheticOptions.from_kwargs(options)
    signals = np.empty((n, N_SAMPLES, 12), dtype=np.float32)
    labels = np.empty((n, len(LABELS)), dtype=np.uint8)
    for i in range(n):
        signals[i], labels[i] = _synthesize(int(seed), int(start) + i, resolved, opts)
    return signals, labels


def defining_parameters(n: int, seed: int, *, start: int = 0, prevalence: dict | None = None,
                        **options) -> pd.DataFrame:
    """The parameters each label of records ``start .. start + n - 1`` is defined by, without the signals.

    One row per record: ``heart_rate_bpm`` (ventricular rate for AF), ``pr_ms`` (NaN for AF),
    ``qrs_ms``, ``conduction`` and the labels (columns named as :data:`LABELS`, after label noise,
    as :func:`generate` returns them). A reader that measured these exactly would reach the
    ceiling that ``benchmarks/label_ceiling.py`` reports.
    """
    _check_range(n, seed, start)
    resolved = resolve_prevalence(prevalence)
    opts = SyntheticOptions.from_kwargs(options)
    rows = []
    for index in range(int(start), int(start) + n):
        labels, rhythm, _ = _labels_of(int(seed), index, resolved, opts)
        rows.append({"heart_rate_bpm": rhythm.heart_rate_bpm,
                     "pr_ms": 1000.0 * rhythm.pr_s if rhythm.kind == "sinus" else float("nan"),
                     "qrs_ms": 1000.0 * rhythm.qrs_s, "conduction": rhythm.conduction,
                     **{label: int(value) for label, value in zip(LABELS, labels)}})
    return pd.DataFrame(rows)


def record_id(seed: int, index: int) -> str:
    """Identifier of synthetic record ``index`` of dataset ``seed``."""
    return f"syn-s{seed}-{index:07d}"


def patient_id(seed: int, index: int, multi_record_patient_fraction: float | None = None) -> str:
    """Identifier of the simulated patient who owns record ``index`` (see SyntheticOptions)."""
    fraction = (SyntheticOptions.multi_record_patient_fraction if multi_record_patient_fraction is None
                else multi_record_patient_fraction)
    block, number = _patient_of(seed, index, fraction)
    return f"syn-s{seed}-p{block:06d}-{number:02d}"


def generate_chunk(n: int, seed: int, *, start: int = 0, prevalence: dict | None = None,
                   **options) -> RecordChunk:
    """:func:`generate` wrapped as a :class:`RecordChunk` with record and patient ids."""
    signals, labels = generate(n, seed, start=start, prevalence=prevalence, **options)
    fraction = SyntheticOptions.from_kwargs(options).multi_record_patient_fraction
    indices = range(start, start + n)
    return RecordChunk(
        signals=signals, labels=labels,
        record_ids=[record_id(seed, i) for i in indices],
        patient_ids=[patient_id(seed, i, fraction) for i in indices],
        source=f"synthetic(seed={seed}, start={start}, n={n})",
    )
