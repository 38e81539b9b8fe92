"""The training side (extra [train]): data checks, estimators, the classic workflow, export and
checks against scikit-learn, the pickle import and the report. Serving never imports it.

Importing this package checks that the [train] extra is installed, so that a serving-only
install asked to train says which extra to add instead of failing deep inside an import.
"""

from modelapi.extras import require

for _module in ("numpy", "pandas", "sklearn"):
    require(_module, "train")
