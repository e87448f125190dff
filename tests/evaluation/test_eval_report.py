import csv
import io
import json

import pytest

from reasondiff.evaluation.report import (
    ablation_ratios,
    add_user_rank,
    csv_table,
    differences,
    differences_table,
    interval_table,
    markdown_table,
    summarise,
    write_report,
)

VALUES = {  # method -> metric -> per-case values (2 cases)
    "reasondiff": {"imaging_quality": [0.5, 0.6], "motion_smoothness": [0.98, 0.99], "dynamic_degree": [1, 1],
                   "clip_text": [0.26, 0.28], "clip_image": [0.50, 0.54]},
    "wan": {"imaging_quality": [0.5, 0.5], "motion_smoothness": [0.99, 0.99], "dynamic_degree": [1, 0],
            "clip_text": [0.20, 0.22], "clip_image": [0.56, 0.56]},
    "no_multi_prompt": {"imaging_quality": [0.4, 0.5], "motion_smoothness": [0.97, 0.97], "dynamic_degree": [0, 0],
                        "clip_text": [0.20, 0.22], "clip_image": [0.5, 0.5]},
}
USER_RANK = {"reasondiff": {"mean": 1.5, "std": 0.5, "n": 2}, "wan": {"mean": 2.0, "std": 0.816497, "n": 2},
             "no_multi_prompt": {"mean": 2.5, "std": 0.5, "n": 2}}

EXPECTED = """\
| Model | Imaging Quality(↑) | Motion Smooth(↑) | Dynamic Degree(↑) | CLIP Score (Text)(↑) | CLIP Score (Image)(↑) | User Rank(↓) |
|---|---:|---:|---:|---:|---:|---:|
| Wan2.1 | <u>0.500 ± 0.000</u> | **0.990 ± 0.000** | <u>0.500 ± 0.500</u> | <u>0.210 ± 0.010</u> | **0.560 ± 0.000** | <u>2.000 ± 0.816</u> |
| w/o Multi. prompt | 0.450 ± 0.050 | 0.970 ± 0.000 | 0.000 ± 0.000 | <u>0.210 ± 0.010</u> | 0.500 ± 0.000 | 2.500 ± 0.500 |
| ReasonDiff | **0.550 ± 0.050** | <u>0.985 ± 0.005</u> | **1.000 ± 0.000** | **0.270 ± 0.010** | <u>0.520 ± 0.020</u> | **1.500 ± 0.500** |
"""


def rows():
    out = []
    for method, metrics in VALUES.items():
        for case in range(2):
            out.append({"case_id": f"c{case}", "mode": method, "method": method,
                        "metrics": {k: v[case] for k, v in metrics.items()}})
    return out


def test_table_one_layout_against_a_fixed_input():
    summary = add_user_rank(summarise(rows()), USER_RANK)
    assert markdown_table(summary) == EXPECTED


def test_missing_metrics_print_a_dash_and_explicit_order_is_kept():
    summary = summarise(rows())
    table = markdown_table(summary, methods=["reasondiff", "wan"], digits=2)
    lines = table.splitlines()
    assert lines[2].startswith("| ReasonDiff | **0.55 ± 0.05** |") and lines[2].endswith("| – |")
    assert lines[3].startswith("| Wan2.1 | <u>0.50 ± 0.00</u> | **0.99 ± 0.00** |")
    with pytest.raises(ValueError, match="no results for method"):
        markdown_table(summary, methods=["cogvideox"])


def test_csv_holds_unrounded_numbers():
    table = list(csv.DictReader(io.StringIO(csv_table(add_user_rank(summarise(rows()), USER_RANK)))))
    assert [r["method"] for r in table] == ["wan", "no_multi_prompt", "reasondiff"]
    full = table[2]
    assert float(full["clip_text_mean"]) == pytest.approx(0.27) and float(full["clip_text_std"]) == pytest.approx(0.01)
    assert full["dynamic_degree_n"] == "2" and float(full["user_rank_mean"]) == 1.5
    assert float(full["clip_text_ci_low"]) == pytest.approx(0.26) and float(full["clip_text_ci_high"]) == pytest.approx(0.28)
    assert full["user_rank_ci_low"] == "" == full["user_rank_ci_high"]  # the study's rank has no interval


def test_ablation_ratios_and_chart(tmp_path):
    summary = summarise(rows())
    ratios = ablation_ratios(summary)
    assert ratios["no_multi_prompt"]["imaging_quality"] == pytest.approx(0.45 / 0.55)
    assert ratios["wan"]["clip_image"] == pytest.approx(0.56 / 0.52)
    assert ratios["no_multi_prompt"]["dynamic_degree"] == 0.0
    written = write_report(summary, tmp_path)
    png = written["ablation_png"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    lines = written["ablation_csv"].read_text().splitlines()
    assert lines[0] == "variant,imaging_quality,motion_smoothness,dynamic_degree,clip_text,clip_image"
    assert lines[1].startswith("wan,0.909091,1.005076,0.500000,")
    alone = write_report(summary, tmp_path / "alone", methods=["reasondiff"])  # no variant: no chart, no error
    assert set(alone) == {"markdown", "intervals", "csv"}
    with pytest.raises(ValueError, match="full model 'reasondiff'"):
        ablation_ratios({"wan": summary["wan"]})


def test_summary_statistics_are_population_std():
    summary = summarise(rows() + [{"mode": "wan", "method": "wan", "metrics": {"clip_text": None}}])
    entry = summary["wan"]["dynamic_degree"]
    assert (entry["mean"], entry["std"], entry["n"]) == (0.5, 0.5, 2) and entry["ci95"] == [0.0, 1.0]
    assert summary["wan"]["clip_text"]["n"] == 2  # None (no captions) is not a zero
    json.dumps(summary)


def test_interval_table_and_paired_differences_from_the_baseline(tmp_path):
    data = rows()
    table = interval_table(summarise(data), methods=["wan", "reasondiff"], digits=2).splitlines()
    assert table[2].startswith("| Wan2.1 | 0.50 [0.50, 0.50] |") and table[2].endswith("| 2 |")
    diffs = differences(data, "wan")
    assert set(diffs) == {"no_multi_prompt", "reasondiff"}
    assert diffs["reasondiff"]["imaging_quality"]["mean"] == pytest.approx(0.05)  # 0.55 - 0.50, case by case
    assert diffs["reasondiff"]["imaging_quality"]["n"] == 2
    text = differences_table(diffs, "wan", digits=2)
    assert "| ReasonDiff | +0.05 [+0.00, +0.10] |" in text
    written = write_report(summarise(data), tmp_path, rows=data)
    assert "Model − Wan2.1" in written["differences"].read_text()
    with pytest.raises(ValueError, match="baseline 'cogvideox'"):
        differences(data, "cogvideox")


def test_the_report_says_which_bootstrap_it_used(tmp_path):
    """Rows that name their image (`image_key`) get intervals over images; rows that do not, over cases."""
    data = [{**row, "image_key": "same-image"} for row in rows()]  # both cases show one image
    written = write_report(summarise(data), tmp_path / "clustered", rows=data)
    assert written["intervals"].read_text().splitlines()[-1] == (
        "Intervals: clustered bootstrap over the cases' images, 1 images for 2 cases (cases that share an image "
        "are resampled together).")
    assert written["differences"].read_text().splitlines()[-1].startswith("Intervals: clustered bootstrap")
    assert summarise(data)["wan"]["dynamic_degree"]["ci95"] == [0.5, 0.5]  # one image: nothing to resample
    plain = write_report(summarise(rows()), tmp_path / "plain", rows=rows())
    assert plain["intervals"].read_text().splitlines()[-1].startswith("Intervals: bootstrap over cases")
