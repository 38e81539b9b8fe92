"""`model.skops`: the full-fidelity scikit-learn copy, loaded only with an explicit trust list.

skops.io stores objects as a schema plus arrays and never runs pickle. It trusts the types
it ships a list for (scikit-learn estimators, numpy and scipy containers); modelapi adds
only `TRUSTED_TYPES`, the types its own estimators need beyond that. A file naming any other
type is refused before anything in it is built.
"""

from __future__ import annotations

from modelapi.bundle import Bundle
from modelapi.errors import BundleError, TrainingError
from modelapi.extras import require

__all__ = ["FILE_NAME", "TRUSTED_TYPES", "dump_skops", "load_skops", "read_estimator"]

FILE_NAME = "model.skops"
# Beyond skops' own defaults, each a plain container or a pure function:
# - the tree structure inside decision trees, forests and GradientBoosting;
# - numpy.dtype, the dtype SimpleImputer records (a dtype object builds nothing else);
# - HistGradientBoosting's trees (arrays of nodes), and the check_array its preprocessor
#   calls on numeric columns, through functools.partial. skops builds a partial from its
#   function and arguments as nodes of their own, each checked against this list too, so a
#   partial of anything untrusted is still refused.
TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",
    "sklearn.utils.validation.check_array",
)


def load_skops(data: bytes, where: str = FILE_NAME) -> object:
    """Build the estimator in a skops file; raise BundleError naming the file for any other type."""
    sio = require("skops.io", "train")
    try:
        untrusted: list[str] = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a corrupt zip or schema raises whatever its parser raises
        raise BundleError(f"{where}: not a readable skops file ({type(exc).__name__})") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise BundleError(
            f"{where}: holds types outside the trusted list ({', '.join(refused)[:300]});"
            " refusing to load it"
        )
    try:
        estimator: object = sio.loads(data, trusted=sorted(set(untrusted)))
    except Exception as exc:  # same: skops has no error type of its own for a broken file
        raise BundleError(
            f"{where}: cannot be loaded ({type(exc).__name__}: {exc})"[:300]
        ) from None
    return estimator


def read_estimator(bundle: Bundle) -> object:
    """The scikit-learn estimator stored in a bundle's `model.skops`."""
    data = bundle.files.get(FILE_NAME)
    if data is None:
        raise BundleError(f"{FILE_NAME}: not in this bundle (read it with serving_only=False)")
    return load_skops(data)


def dump_skops(estimator: object) -> bytes:
    """Serialize an estimator with skops; refuse one that needs types outside the trust list."""
    sio = require("skops.io", "train")
    data: bytes = sio.dumps(estimator)
    untrusted = set(sio.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        raise TrainingError(
            f"{FILE_NAME}: the estimator holds types outside the trusted list"
            f" ({', '.join(sorted(untrusted))[:300]}); modelapi cannot store it safely"
        )
    return data
