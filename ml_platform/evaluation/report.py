"""The evaluation report a person reads: money first, then the metrics behind it."""

from __future__ import annotations


def _money(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


def _percent(value: float) -> str:
    return "n/a" if value != value else f"{100 * value:.1f}%"


def render_report(summary: dict) -> str:
    """Markdown summary of an evaluation."""
    currency = summary["currency"]
    test = summary["test"]
    low, high = test["money_interval_95"]
    lines = [
        f"# {summary['model']} — evaluation of {summary['model_version']}",
        "",
        f"**Money on the test window {test['window'][0]} to {test['window'][1]}: "
        f"{_money(test['money'], currency)}** (95% bootstrap interval {_money(low, currency)} to "
        f"{_money(high, currency)}), against {_money(test['money_do_nothing'], currency)} for doing nothing and "
        f"{_money(test['money_perfect'], currency)} for a perfect model ({_percent(test['share_of_perfect'])} of "
        f"the possible gain).",
        "",
        f"Decision threshold {summary['threshold']:.4f}, chosen on the validation window (where it made "
        f"{_money(summary['validation']['money'], currency)}); flags {test['flagged']:,} of {test['rows']:,} rows.",
        "",
        "| metric (test) | value |",
        "|---|---|",
        f"| ROC AUC | {test['roc_auc']:.4f} |",
        f"| log loss | {test['log_loss']:.4f} |",
        f"| Brier score | {test['brier']:.4f} |",
        f"| precision at threshold | {_percent(test['precision'])} |",
        f"| recall at threshold | {_percent(test['recall'])} |",
        f"| positive rate | {_percent(test['positive_rate'])} |",
        "",
        "## Gate",
        "",
        "| check | result | why |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {'passed' if check['passed'] else '**failed**'} | {check['why']} |"
              for name, check in summary["gate"].items()]
    if summary["money_by_slice"]:
        lines += ["", "## Money by slice", "", f"| slice | rows | flagged | money ({currency}) | perfect |",
                  "|---|---|---|---|---|"]
        lines += [f"| {row['slice']} | {row['rows']:,} | {row['flagged']:,} | {row['money']:,.0f} | "
                  f"{row['perfect']:,.0f} |" for row in summary["money_by_slice"]]
    lines += ["", "## Calibration (test)", "", "| score bin | rows | mean predicted | observed |", "|---|---|---|---|"]
    lines += [f"| {row['bin']} | {row['rows']:,} | {row['mean_predicted']:.3f} | {row['observed']:.3f} |"
              for row in summary["calibration"]]
    return "\n".join(lines) + "\n"
