"""The training side (extra [train]): data checks, estimators, the classic workflow, export and
checks against scikit-learn, the pickle import and the report. Serving never imports it."""
