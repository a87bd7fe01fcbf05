"""Model artifacts on disk: a directory of plain data, checked before anything uses it.

Layout of ``<models dir>/<name>/``:

- ``model.json``: format name and version, kind (``logistic`` or ``hgb``), the feature list
  and feature set (``features.FEATURE_SETS``), threshold (0-999), creation time, training
  data hash, metrics, hyperparameters, and the SHA-256 of each other file.
- ``arrays.npz``: the fitted parameters (``export`` describes them), read with
  ``allow_pickle=False``.
- ``terminal_risk.json``: the terminal risk lookup table.

``model.json`` may also hold ``reference`` (written since 2026-11-29): each feature's and the
score's distribution on the held-out rows, what ``authhost models drift`` compares live
traffic with (``models.drift``), with each feature's missing share and each segment's
reference (the channel, the product...) since a later day of that month. It is checked with
the rest of ``model.json``; an artifact without one, or without those, loads and serves as
before.

``model.json`` holds ``amount_units`` since 2026-11-29: ``currency``, the features read
amounts in each currency's own major units (ISO 4217 exponent: yen, dinars). An artifact
without it was trained when every currency was read as having two decimals, and is served
with that scaling still (``features.TWO_DECIMALS``): its scores do not move; retrain it for
the per-currency scaling.

``read_artifact`` refuses, with an ``ArtifactError`` naming the file and the problem, an
unknown format or version, a feature list this code does not compute, a file whose hash does
not match, or arrays that are not a well-formed model (wrong shapes, child indices outside
their tree, cycles). Nothing in a file is ever executed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from authhost.models.drift import Reference, ReferenceError
from authhost.models.features import (
    CURRENCY_UNITS,
    FEATURE_SET,
    FEATURE_SETS,
    TWO_DECIMALS,
    feature_blocks,
)
from authhost.models.terminal_risk import TerminalRisk

FORMAT = "authhost-model"
FORMAT_VERSION = 1
KINDS = ("logistic", "hgb")
METADATA_FILE = "model.json"
# how the features read amounts (``amount_units`` in model.json): the only value written; an
# artifact without the key was trained with two decimals for every currency
AMOUNT_UNITS = "currency"
UNITS_BY_NAME: dict[str | None, Mapping[str, int]] = {
    AMOUNT_UNITS: CURRENCY_UNITS,
    None: TWO_DECIMALS,
}
ARRAYS_FILE = "arrays.npz"
RISK_FILE = "terminal_risk.json"
_ARRAY_KINDS: dict[str, dict[str, str]] = {  # name -> numpy dtype kind ("i", "f", "b")
    "logistic": {"coef": "f", "intercept": "f"},
    "hgb": {
        "tree_start": "i",
        "feature": "i",
        "threshold": "f",
        "left": "i",
        "right": "i",
        "is_leaf": "b",
        "missing_left": "b",
        "value": "f",
        "baseline": "f",
    },
}


# Arrays that explain a score (which features pushed it up), in artifacts written since
# 2026-11-27; older ones still score, without reasons. logistic: the training mean of each
# feature; hgb: the training rows that reached each node.
_OPTIONAL_ARRAYS: dict[str, dict[str, str]] = {"logistic": {"mean": "f"}, "hgb": {"count": "i"}}


class ArtifactError(ValueError):
    """An artifact that cannot be used; the message names the artifact and the problem."""


@dataclass(frozen=True)
class Artifact:
    """A checked artifact: its metadata, parameter arrays and terminal risk table."""

    path: Path
    metadata: Mapping[str, Any]
    arrays: Mapping[str, np.ndarray]
    terminal_risk: TerminalRisk

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def kind(self) -> str:
        return str(self.metadata["kind"])

    @property
    def threshold(self) -> int:
        return int(self.metadata["threshold"])

    @property
    def feature_set(self) -> str:
        """The feature set the model was trained on (metadata without one: the first)."""
        return str(self.metadata.get("feature_set", FEATURE_SET))

    @property
    def feature_blocks(self) -> int:
        """How many feature blocks beyond the first set it reads (``features.FEATURE_SETS``)."""
        return feature_blocks(self.feature_set)

    @property
    def amount_units(self) -> Mapping[str, int]:
        """What its amount features are divided by (``features.feature_values``' ``units``):
        each currency's minor units, or two decimals for an artifact trained before
        2026-11-29 (no ``amount_units``), served as it was trained."""
        return UNITS_BY_NAME[self.metadata.get("amount_units")]

    @property
    def reads_acceptors(self) -> bool:
        """Its features include the merchant and terminal counters."""
        return self.feature_blocks > 0

    @property
    def reference(self) -> Reference | None:
        """The distributions drift is measured against (None: trained before they were kept;
        checked when the artifact was read)."""
        data = self.metadata.get("reference")
        return None if data is None else Reference.from_json(data, self.metadata["features"])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_artifact(
    path: str | Path,
    kind: str,
    arrays: Mapping[str, np.ndarray],
    terminal_risk: TerminalRisk,
    metadata: Mapping[str, Any],
    feature_set: str = FEATURE_SET,
) -> Path:
    """Write a new artifact directory atomically (built beside it, then renamed into place)."""
    final = Path(path)
    if final.exists():
        raise ArtifactError(f"{final}: already exists; artifacts are never overwritten")
    if kind not in KINDS:
        raise ArtifactError(f"unknown model kind {kind!r}")
    if feature_set not in FEATURE_SETS:
        raise ArtifactError(f"unknown feature set {feature_set!r}")
    validate_arrays(kind, arrays, str(final), len(FEATURE_SETS[feature_set]))
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    np.savez(staging / ARRAYS_FILE, **{k: np.asarray(v) for k, v in arrays.items()})
    (staging / RISK_FILE).write_text(json.dumps(terminal_risk.to_json(), indent=1))
    meta = {
        **metadata,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "feature_set": feature_set,
        "features": list(FEATURE_SETS[feature_set]),
        "amount_units": AMOUNT_UNITS,
        "files": {
            ARRAYS_FILE: _sha256(staging / ARRAYS_FILE),
            RISK_FILE: _sha256(staging / RISK_FILE),
        },
    }
    (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(staging, final)
    return final


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The checked ``model.json`` of an artifact (without loading its arrays)."""
    where = Path(path)
    file = where / METADATA_FILE
    if not file.is_file():
        raise ArtifactError(f"{where}: not a model artifact (no {METADATA_FILE})")
    try:
        meta = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{file}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{file}: unknown format (expected {FORMAT!r})")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{file}: format version {version!r} is not supported (this authhost reads "
            f"{FORMAT_VERSION}); retrain the model with this version"
        )
    if meta.get("kind") not in KINDS:
        raise ArtifactError(f"{file}: unknown model kind {meta.get('kind')!r}")
    # a value that is not a text (a list, an object) is named too, not a TypeError
    feature_set = meta.get("feature_set")
    names = FEATURE_SETS.get(feature_set) if isinstance(feature_set, str) else None
    if names is None:
        raise ArtifactError(
            f"{file}: built for feature set {meta.get('feature_set')!r}, this authhost computes "
            f"{' and '.join(repr(s) for s in FEATURE_SETS)}; retrain the model"
        )
    if meta.get("features") != list(names):
        raise ArtifactError(
            f"{file}: its features are not those of {meta['feature_set']!r} as this authhost "
            f"computes them ({feature_difference(meta.get('features'), names)}); retrain "
            "the model"
        )
    units = meta.get("amount_units")
    if not isinstance(units, str | None) or units not in UNITS_BY_NAME:
        raise ArtifactError(
            f"{file}: amount_units {meta.get('amount_units')!r} is not one this authhost "
            f"computes ({AMOUNT_UNITS!r}, or none: two decimals); retrain the model"
        )
    threshold = meta.get("threshold")
    if not isinstance(threshold, int) or isinstance(threshold, bool) or not 0 <= threshold <= 999:
        raise ArtifactError(f"{file}: threshold must be an integer score 0-999")
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != {ARRAYS_FILE, RISK_FILE}:
        raise ArtifactError(f"{file}: 'files' must list {ARRAYS_FILE} and {RISK_FILE}")
    # what `models list` shows: an edited or damaged model.json is named, not a traceback
    if not isinstance(meta.get("metrics", {}), dict):
        raise ArtifactError(f"{file}: 'metrics' must be an object of figures")
    if not isinstance(meta.get("created", ""), str):
        raise ArtifactError(f"{file}: 'created' must be a text (an ISO 8601 time)")
    if meta.get("reference") is not None:  # plain numbers only, checked like the rest
        try:
            Reference.from_json(meta["reference"], names)
        except ReferenceError as exc:
            raise ArtifactError(f"{file}: {exc}") from None
    return meta


def feature_difference(found: Any, expected: Sequence[str]) -> str:
    """What differs between an artifact's feature list and the set's: the names it lacks or
    has in excess, or that the order differs. The set's name alone said nothing: a model of
    an older authhost, or an edited model.json, named a set this one computes and was refused
    as "built for feature set 'authhost-features-1', this authhost computes
    'authhost-features-1' and ..."."""
    if not isinstance(found, list) or not all(isinstance(n, str) for n in found):
        return "'features' is not a list of names"

    def named(what: str, names: list[str]) -> list[str]:
        more = " ..." if len(names) > 5 else ""
        return [f"{len(names)} {what}: {', '.join(names[:5])}{more}"] if names else []

    parts = named("missing", [n for n in expected if n not in found])
    parts += named("unknown", [n for n in found if n not in expected])
    if not parts:
        parts.append(
            "the same names in another order"
            if len(found) == len(expected)
            else "a name written twice"
        )
    return "; ".join(parts)


def read_artifact(path: str | Path) -> Artifact:
    """Read and check an artifact; raise ``ArtifactError`` on anything unexpected."""
    where = Path(path)
    meta = read_metadata(where)
    for name, expected in meta["files"].items():
        file = where / name
        if not file.is_file():
            raise ArtifactError(f"{file}: missing")
        if _sha256(file) != expected:
            raise ArtifactError(
                f"{file}: content does not match the SHA-256 in {METADATA_FILE}: the artifact "
                "was modified or corrupted"
            )
    try:
        with np.load(where / ARRAYS_FILE, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(
            f"{where / ARRAYS_FILE}: not a plain numeric array file: {exc}"
        ) from None
    validate_arrays(meta["kind"], arrays, str(where), len(meta["features"]))
    try:
        risk = TerminalRisk.from_json(json.loads((where / RISK_FILE).read_text()))
    except (json.JSONDecodeError, ValueError) as exc:
        raise ArtifactError(f"{where / RISK_FILE}: {exc}") from None
    return Artifact(where, meta, arrays, risk)


def validate_arrays(
    kind: str, arrays: Mapping[str, np.ndarray], where: str, n_features: int
) -> None:
    """Shapes, dtypes and tree structure: a model of ``n_features`` inputs that can be
    evaluated safely."""
    required, optional = _ARRAY_KINDS[kind], _OPTIONAL_ARRAYS[kind]
    if not set(required) <= set(arrays) <= set(required) | set(optional):
        raise ArtifactError(
            f"{where}: {kind} arrays must be {sorted(required)} (and optionally "
            f"{sorted(optional)}), got {sorted(arrays)}"
        )
    expected = {**required, **{k: v for k, v in optional.items() if k in arrays}}
    for name, dtype_kind in expected.items():
        array = arrays[name]
        if array.ndim != 1 or array.dtype.kind != dtype_kind:
            raise ArtifactError(f"{where}: array {name!r} has the wrong shape or type")
        if dtype_kind == "f" and not np.isfinite(array).all() and name != "threshold":
            raise ArtifactError(f"{where}: array {name!r} holds NaN or infinite values")
    if kind == "logistic":
        if len(arrays["coef"]) != n_features or len(arrays["intercept"]) != 1:
            raise ArtifactError(f"{where}: logistic coefficients do not match the features")
        if "mean" in arrays and len(arrays["mean"]) != n_features:
            raise ArtifactError(f"{where}: feature means do not match the features")
        return
    _validate_trees(arrays, where, n_features)


def _validate_trees(arrays: Mapping[str, np.ndarray], where: str, n_features: int) -> None:
    starts = arrays["tree_start"]
    n = len(arrays["feature"])
    if any(len(arrays[k]) != n for k in ("threshold", "left", "right", "is_leaf", "missing_left")):
        raise ArtifactError(f"{where}: node arrays differ in length")
    if len(arrays["value"]) != n or len(arrays["baseline"]) != 1:
        raise ArtifactError(f"{where}: node arrays differ in length")
    if "count" in arrays and (len(arrays["count"]) != n or (arrays["count"] < 0).any()):
        raise ArtifactError(f"{where}: node counts differ in length or are negative")
    if len(starts) < 2 or starts[0] != 0 or starts[-1] != n or np.any(np.diff(starts) < 1):
        raise ArtifactError(f"{where}: tree offsets are not increasing from 0 to the node count")
    leaf = arrays["is_leaf"]
    inner = ~leaf
    if np.isnan(arrays["threshold"][inner]).any():
        raise ArtifactError(f"{where}: a split threshold is NaN")
    feature = arrays["feature"][inner]
    if len(feature) and (feature.min() < 0 or feature.max() >= n_features):
        raise ArtifactError(f"{where}: a split uses a feature index outside 0-{n_features - 1}")
    tree_of = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    index = np.arange(n)
    for side in ("left", "right"):
        child = arrays[side][inner]
        parent = index[inner]
        end = starts[tree_of[inner] + 1]
        # children come after their parent and inside its tree: no cycle, no escape
        if np.any(child <= parent) or np.any(child >= end):
            raise ArtifactError(f"{where}: a {side} child points outside its tree")
    referenced = np.bincount(
        np.concatenate((arrays["left"][inner], arrays["right"][inner])), minlength=n
    )
    roots = np.zeros(n, dtype=bool)
    roots[starts[:-1]] = True
    if np.any(referenced[~roots] != 1) or np.any(referenced[roots] != 0):
        raise ArtifactError(f"{where}: nodes do not form trees (a node has two parents or none)")
