"""The Isolation Forest: fit, score, risk cut-offs, per-feature attribution, and the model file.

Scores are scikit-learn's anomaly score, `-score_samples(X)`: between 0 and 1, about 0.5 for
an ordinary transaction, towards 1 for one that is isolated in few splits.

Risk cut-offs come from the distribution of the training sample's own scores, robustly: with
m its median and s = 1.4826 x its median absolute deviation (the standard deviation, were the
scores normal), a transaction is
  low       at or above m + 3 s,
  medium    at or above m + 4 s,
  high      at or above m + 4.5 s,
  critical  above m + 8 s.
Percentiles were tried first and rejected: the history of a real shop holds its own anomalies
(card testing, outages, mispriced items), and the top percentiles of the training scores are
theirs, which put "high" above anything but the most blatant.
(The check's business rules on amounts come on top; see anomaly_cli.ml.judge.)

Attribution is exact and one feature at a time, not SHAP: a feature's contribution is the
score of the typical transaction (every feature at its training median) given this one
feature's value, minus the typical transaction's score. It is computed exactly (one extra
score per feature), is deterministic, reads in the units of the score, and pairs with
"value vs usual" in the explanation. Removing one feature at a time from the transaction
(occlusion) was tried first: an account takeover is unusual in five ways at once, and taking
away any one of them leaves it as isolated as before, so every contribution came out near 0.
shap's TreeExplainer would add numba and llvmlite (~100 MB, seconds of import) for
path-dependent values that explain the score against the whole training set's expected path
length, which answers "why is this unusual for the shop", not "for this customer".

The model file is a zip: meta.json (format, scikit-learn version, features, data window,
cut-offs, context) read first, so that a file from another version is refused with a clear
message before anything is deserialised, and model.skops, the forest in skops' format, which
loads only the types it was asked to trust (no pickle).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anomaly_cli.errors import UsageError
from anomaly_cli.ml.features import FEATURES, Context

FORMAT = 1
SEED = 20250917
TREES = 200
SPREADS = {"low": 3.0, "medium": 4.0, "high": 4.5, "critical": 8.0}
# What model.skops may contain: the forest, its trees, and the numpy values inside them.
TRUSTED_PREFIXES = ("sklearn.ensemble._iforest.", "sklearn.tree.", "numpy.", "builtins.")


class ModelFileError(UsageError):
    """The model file cannot be used (missing, damaged, or from another version)."""


@dataclass
class BehaviourModel:
    forest: Any  # sklearn.ensemble.IsolationForest
    context: Context
    baseline: list[float]  # training median of each feature: the occlusion reference
    cutoffs: dict[str, float]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.meta.get("id", ""))

    def scores(self, rows: Sequence[Sequence[float]]) -> list[float]:
        import numpy as np

        if not rows:
            return []
        x = np.asarray(rows, dtype=np.float64)
        return [float(s) for s in -self.forest.score_samples(x)]

    def contributions(self, xs: Sequence[Sequence[float]]) -> list[list[float]]:
        """Per transaction and feature: the typical transaction's score with this feature's value,
        minus the typical transaction's own score. One scoring call for all of them: a call per
        finding cost 20 ms each, 30 s for a shop with a thousand findings."""
        import numpy as np

        if not len(xs):
            return []
        base = np.asarray(self.baseline, dtype=np.float64)
        n = len(base)
        typical = float(-self.forest.score_samples(base.reshape(1, -1))[0])
        grid = np.tile(base, (len(xs) * n, 1))
        values = np.asarray(xs, dtype=np.float64)
        rows = np.arange(len(xs) * n)
        grid[rows, rows % n] = values.reshape(-1)
        s = -self.forest.score_samples(grid)
        return [[float(v) - typical for v in s[i * n:(i + 1) * n]] for i in range(len(xs))]


def fit(rows: Sequence[Sequence[float]], context: Context, meta: dict[str, Any]) -> BehaviourModel:
    """Fit on the training vectors (at least a few hundred for the cut-offs to mean anything)."""
    import numpy as np
    import sklearn
    from sklearn.ensemble import IsolationForest

    x = np.asarray(rows, dtype=np.float64)
    forest = IsolationForest(n_estimators=TREES, max_samples=min(256, len(x)), random_state=SEED, n_jobs=1)
    forest.fit(x)
    train = -forest.score_samples(x)
    median = float(np.median(train))
    spread = 1.4826 * float(np.median(np.abs(train - median)))
    cutoffs = {name: median + k * spread for name, k in SPREADS.items()}
    digest = hashlib.sha256(x.tobytes()).hexdigest()[:12]
    meta = {"format": FORMAT, "sklearn": sklearn.__version__, "features": list(FEATURES),
            "training_rows": len(x), "id": f"runtime-{digest}", **meta}
    return BehaviourModel(forest, context, [float(v) for v in np.median(x, axis=0)], cutoffs, meta)


def save(model: BehaviourModel, path: Path) -> str:
    """Write the model file (atomically); returns its id (a digest of its content)."""
    import skops.io as sio

    buffer = io.BytesIO()
    sio.dump(model.forest, buffer)
    blob = buffer.getvalue()
    file_id = hashlib.sha256(blob).hexdigest()[:12]
    meta = {**model.meta, "id": file_id, "cutoffs": model.cutoffs, "baseline": model.baseline,
            "context": {"bins": list(model.context.bin_share), "weekdays": list(model.context.weekday_share)}}
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.json", json.dumps(meta, indent=2, sort_keys=True))
        z.writestr("model.skops", blob)
    tmp.replace(path)
    model.meta = meta
    return file_id


def read_meta(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("meta.json"))
    except FileNotFoundError:
        raise ModelFileError(f"model file {path} not found",
                             hint="train one with 'anomaly train behaviour --model FILE'") from None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelFileError(f"{path} is not an anomaly model file ({exc})",
                             hint="train one with 'anomaly train behaviour --model FILE'") from None


def load(path: Path) -> BehaviourModel:
    """Read a model file; refuse one from another format, scikit-learn version or feature list."""
    import sklearn
    import skops.io as sio

    meta = read_meta(path)
    retrain = f"retrain it with 'anomaly train behaviour --model {path}'"
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"model file {path} has format {meta.get('format')!r}, this anomaly reads {FORMAT}",
                             hint=retrain)
    if meta.get("sklearn") != sklearn.__version__:
        raise ModelFileError(f"model file {path} was trained with scikit-learn {meta.get('sklearn')}, "
                             f"this installation has {sklearn.__version__}", hint=retrain)
    if meta.get("features") != list(FEATURES):
        raise ModelFileError(f"model file {path} was trained on other features", hint=retrain)
    with zipfile.ZipFile(path) as z:
        blob = z.read("model.skops")
    if hashlib.sha256(blob).hexdigest()[:12] != meta.get("id"):
        raise ModelFileError(f"model file {path} is damaged (its content does not match its id)", hint=retrain)
    untrusted = sio.get_untrusted_types(data=blob)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelFileError(f"model file {path} holds types this tool does not load: {', '.join(refused)}")
    forest = sio.load(io.BytesIO(blob), trusted=untrusted)
    context = Context(tuple(meta["context"]["bins"]), tuple(meta["context"]["weekdays"]))
    return BehaviourModel(forest, context, [float(v) for v in meta["baseline"]],
                          {k: float(v) for k, v in meta["cutoffs"].items()}, meta)
