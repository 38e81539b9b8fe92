"""Request bodies read against the feature table: what `/predict` and `/invocations` accept.

`typed_rows` is the typed msgspec decode of valid JSON rows (the fast path), `csv_rows` the one
CSV header rule and CSV bodies, `mlflow` and `mlflow_rows` the MLflow scoring bodies, and
`ignored_fields` the header naming what a request sent that is not a feature. Cells are
validated by `modelapi.schema.FeatureTable`, with `modelapi.values`' rules.
"""
