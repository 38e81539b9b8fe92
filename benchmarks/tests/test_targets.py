"""The targets: figures in, verdicts out, and the pass/fail table they make."""

from __future__ import annotations

import pytest

from benchmarks.report import flatten
from benchmarks.targets import TARGETS, bound_of, format_table, judge, summary

REPORTED = {"single row vs MLServer", "single row vs BentoML"}


def passing_figures() -> dict[str, float]:
    """Figures that meet every target, from nested results as the runner writes them."""
    bulk = {"rows_per_s": 2_100_000, "errors": 0}
    results = {
        "single_row": {
            "ceiling": {"requests_per_s": 50_000.0},
            "modelapi": {"requests_per_s": 40_000.0, "latency_ms": {"p99": 2.0}, "errors": 0},
            "naive": {"requests_per_s": 4_000.0},
            "ratios": {
                "modelapi_to_ceiling": 0.8,
                "modelapi_to_naive": 10.0,
                "modelapi_to_mlserver": 12.0,
                "modelapi_to_bentoml": 30.0,
            },
        },
        "batch": {"modelapi": {"rows_per_s": 1_100_000, "errors": 0}},
        "bulk": {
            "modelapi": {
                "dataframe_split_predict": dict(bulk),
                "dataframe_split_invocations": dict(bulk),
                "csv_invocations": dict(bulk),
            }
        },
        "cold_start": {"modelapi": {"median_s": 0.1, "runs_s": [0.1, 0.2]}},
        "lambda": {
            "python": "/usr/bin/python3.12",
            "embedded": {
                "zipped_bytes": 300_000,
                "cold_start_median_ms": 60.0,
                "warm_p50_us": 20.0,
                "ric_first_response_median_ms": 80.0,
            },
            "s3": {"cold_start_median_ms": 140.0, "ric_first_response_median_ms": 145.0},
        },
        "memory": {"modelapi": {"rss_bytes": 35_000_000}},
        "memory_after_bulk": {"modelapi": {"rss_bytes": 55_000_000}},
        "predict": {
            "rows_250000": {"peak_rss_bytes": 50_000_000},
            "rows_1000000": {"rows_per_s": 2_100_000, "peak_rss_bytes": 52_000_000},
        },
        "pipeline": {
            "in_process": {
                "forest": {"pipeline_us_per_row": 25.0, "numpy_block_rows_per_s_cpu": 600_000},
                "hist_gradient_boosting": {"pipeline_us_per_row": 15.0},
            },
            "predict_file": {"rows_per_s": 550_000},
            "http": {"ratios": {"pipeline_to_onnx": 0.9}},
            "lambda": {
                "zipped_bytes": 1_070_000,
                "pipeline_json_compressed_bytes": 72_000,
                "zip_without_model_bytes": 998_000,
                "cold_start_median_ms": 120.0,
            },
        },
    }
    return flatten(results)


def test_flatten_names_every_number_and_skips_the_rest() -> None:
    figures = passing_figures()
    assert figures["single_row.modelapi.p99_ms"] == 2.0
    assert figures["lambda.embedded.zipped_bytes"] == 300_000
    assert not [name for name in figures if "python" in name or "runs_s" in name]
    assert flatten({"a": {"ok": True, "n": 1}}) == {"a.n": 1.0}


def test_every_target_passes_on_figures_that_meet_it() -> None:
    verdicts = judge(passing_figures())
    assert len(verdicts) == len(TARGETS)
    assert [v.target.name for v in verdicts if not v.passed] == []


@pytest.mark.parametrize(
    ("figure", "value", "failed"),
    [
        ("single_row.ratios.modelapi_to_ceiling", 0.649, "single row vs ceiling"),
        ("single_row.ratios.modelapi_to_naive", 7.9, "single row vs naive"),
        ("single_row.modelapi.p99_ms", 2.51, "single row p99"),
        ("single_row.modelapi.errors", 1, "errors"),
        ("batch.modelapi.errors", 1, "errors"),
        ("bulk.modelapi.csv_invocations.errors", 1, "errors"),
        ("batch.modelapi.rows_per_s", 999_999, "batch rows/s"),
        (
            "bulk.modelapi.dataframe_split_invocations.rows_per_s",
            1_999_999,
            "bulk dataframe_split /invocations",
        ),
        (
            "bulk.modelapi.dataframe_split_predict.rows_per_s",
            1_999_999,
            "bulk dataframe_split /predict",
        ),
        ("bulk.modelapi.csv_invocations.rows_per_s", 1_999_999, "bulk text/csv /invocations"),
        ("cold_start.modelapi.median_s", 0.151, "serve cold start"),
        ("lambda.embedded.zipped_bytes", 1_000_001, "Lambda zip size"),
        ("lambda.s3.cold_start_median_ms", 151, "Lambda cold start, S3"),
        ("lambda.embedded.cold_start_median_ms", 151, "Lambda cold start, embedded"),
        ("lambda.embedded.warm_p50_us", 51, "Lambda warm p50"),
        (
            "lambda.embedded.ric_first_response_median_ms",
            151,
            "Lambda init (runtime client), embedded",
        ),
        ("lambda.s3.ric_first_response_median_ms", 151, "Lambda init (runtime client), S3"),
        ("memory.modelapi.rss_bytes", 40_000_001, "server RSS after load"),
        ("memory_after_bulk.modelapi.rss_bytes", 60_000_001, "server RSS after bulk bodies"),
        ("predict.rows_1000000.rows_per_s", 1_999_999, "predict CSV rows/s"),
        ("predict.rows_1000000.peak_rss_bytes", 55_000_001, "predict CSV memory flat"),
        ("pipeline.in_process.forest.pipeline_us_per_row", 30.1, "forest one row in process"),
        (
            "pipeline.in_process.hist_gradient_boosting.pipeline_us_per_row",
            20.1,
            "HGB one row in process",
        ),
        ("pipeline.http.ratios.pipeline_to_onnx", 0.69, "forest over HTTP vs ONNX"),
        (
            "pipeline.in_process.forest.numpy_block_rows_per_s_cpu",
            499_999,
            "forest numpy blocks",
        ),
        ("pipeline.predict_file.rows_per_s", 499_999, "forest predict CSV rows/s"),
        ("pipeline.lambda.zip_without_model_bytes", 1_000_001, "forest Lambda zip size"),
        ("pipeline.lambda.cold_start_median_ms", 151, "forest Lambda cold start"),
    ],
)
def test_one_figure_past_its_bound_fails_exactly_its_target(
    figure: str, value: float, failed: str
) -> None:
    figures = passing_figures()
    figures[figure] = value
    assert [v.target.name for v in judge(figures) if not v.passed] == [failed]


def test_bounds_are_inclusive() -> None:
    figures = passing_figures()
    figures["single_row.modelapi.p99_ms"] = 2.5
    figures["single_row.ratios.modelapi_to_ceiling"] = 0.65
    figures["single_row.ratios.modelapi_to_naive"] = 8.0
    figures["lambda.embedded.warm_p50_us"] = 50
    figures["cold_start.modelapi.median_s"] = 0.15
    figures["bulk.modelapi.csv_invocations.rows_per_s"] = 2_000_000
    figures["batch.modelapi.rows_per_s"] = 1_000_000
    figures["pipeline.in_process.forest.pipeline_us_per_row"] = 30
    figures["pipeline.http.ratios.pipeline_to_onnx"] = 0.7
    figures["pipeline.lambda.zip_without_model_bytes"] = 1_000_000
    assert all(v.passed for v in judge(figures))


def test_a_missing_figure_is_not_measured_and_fails() -> None:
    figures = passing_figures()
    del figures["lambda.s3.cold_start_median_ms"]
    del figures["single_row.ratios.modelapi_to_ceiling"]
    verdicts = {v.target.name: v for v in judge(figures)}
    assert verdicts["Lambda cold start, S3"].measured is None
    assert not verdicts["Lambda cold start, S3"].passed
    assert verdicts["single row vs ceiling"].measured is None
    table = format_table(list(verdicts.values()))
    assert "not measured" in table


def test_bulk_bodies_a_server_refused_are_not_measured_and_add_no_errors() -> None:
    figures = {
        k: v
        for k, v in passing_figures().items()
        if not k.startswith("bulk.modelapi.csv_invocations.")
    }
    figures["bulk.modelapi.csv_invocations.refused_with"] = 404
    verdicts = {v.target.name: v for v in judge(figures)}
    assert verdicts["bulk text/csv /invocations"].measured is None
    assert not verdicts["bulk text/csv /invocations"].passed
    assert verdicts["errors"].measured == 0
    assert verdicts["errors"].passed


def test_the_errors_count_every_loaded_body() -> None:
    figures = passing_figures()
    figures["single_row.modelapi.errors"] = 1
    figures["batch.modelapi.errors"] = 2
    figures["bulk.modelapi.dataframe_split_predict.errors"] = 4
    figures["bulk.modelapi.csv_invocations.errors"] = 8
    verdicts = {v.target.name: v for v in judge(figures)}
    assert verdicts["errors"].measured == 15


def test_the_peers_ratios_are_reported_with_each_peer_named_and_not_judged() -> None:
    figures = passing_figures()
    figures["single_row.ratios.modelapi_to_mlserver"] = 0.5  # behind: still only reported
    verdicts = judge(figures)
    reported = {v.target.name: v for v in verdicts if not v.is_judged}
    assert set(reported) == REPORTED
    assert reported["single row vs MLServer"].measured == 0.5
    assert reported["single row vs MLServer"].result == "-"
    assert reported["single row vs MLServer"].as_dict()["passed"] is None
    assert summary(verdicts) == (len(TARGETS) - 2, len(TARGETS) - 2)
    (row,) = [line for line in format_table(verdicts).splitlines() if "MLServer" in line]
    assert "0.50x" in row
    assert row.rstrip(" |").endswith("-")


def test_a_run_without_a_peer_reports_no_ratio_to_it() -> None:
    names = {v.target.name for v in judge(passing_figures(), peers=("naive",))}
    assert not names & REPORTED
    names = {v.target.name for v in judge(passing_figures(), peers=("mlserver", "bentoml"))}
    assert names >= REPORTED


def test_the_summary_counts_the_judged_targets_met() -> None:
    figures = passing_figures()
    figures["single_row.modelapi.p99_ms"] = 3.0
    del figures["pipeline.lambda.cold_start_median_ms"]
    judged = len(TARGETS) - len(REPORTED)
    assert summary(judge(figures)) == (judged - 2, judged)


def test_the_forest_lambda_zip_is_judged_without_the_models_json() -> None:
    figures = passing_figures()
    figures["pipeline.lambda.zipped_bytes"] = 2_000_000  # the model is large: not judged
    assert all(v.passed for v in judge(figures))


def test_bound_of_a_target_and_of_no_such_one() -> None:
    assert bound_of("single row p99") == 2.5
    assert bound_of("single row vs MLServer") is None
    with pytest.raises(KeyError):
        bound_of("no such target")


def test_table_has_one_row_per_target_with_its_result() -> None:
    figures = passing_figures()
    figures["batch.modelapi.rows_per_s"] = 900_000
    lines = format_table(judge(figures)).splitlines()
    assert len(lines) == 2 + len(TARGETS)
    assert len({len(line) for line in lines}) == 1  # columns line up
    (batch,) = [line for line in lines if line.startswith("| batch rows/s")]
    assert "900,000 rows/s" in batch
    assert batch.rstrip(" |").endswith("FAIL")
    passes = sum(line.rstrip(" |").endswith("PASS") for line in lines)
    assert passes == len(TARGETS) - len(REPORTED) - 1
