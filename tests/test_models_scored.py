"""The rows the fraud step scores (``models.scored``): the one rule training, evaluation and
the model comparison choose their rows by, on the auth steps' own reason codes and on
simulated traffic with BIN attacks trained end to end."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import authhost.auth.steps
from authhost.cli.app import app
from authhost.config import AuthConfig
from authhost.models.dataset import load_labelled
from authhost.models.scored import (
    PASS_NOTES,
    SERVER,
    SERVER_REASONS,
    STEP_PREFIXES,
    declined_before_fraud,
    row_declined_before_fraud,
    scored_online,
)
from simulator.traffic import ScenarioRates, TrafficConfig, generate

DAY = 86400.0
STEPS_DIR = Path(authhost.auth.steps.__file__).parent
# the pipeline's step names (auth.factory) and the file of each
STEP_FILES = {
    "validate": "validate.py",
    "card": "card_status.py",
    "card_verification": "card_verification.py",
    "pin": "pin.py",
    "controls": "controls.py",
    "fraud": "fraud.py",
    "funds": "funds.py",
}
REASON = re.compile(r'f?"([a-z0-9_]+\.[a-z0-9_.]*)')
NOTE = re.compile(r'tx\.reasons\.append\(\s*"([^"]+)"')


def test_the_default_pipeline_runs_these_steps_before_the_fraud_step() -> None:
    steps = AuthConfig().steps
    assert steps[: steps.index("fraud")] == list(STEP_PREFIXES)


def test_every_decline_of_a_step_before_fraud_is_named_by_its_step() -> None:
    """Each decline reason written in a step's file (read from the file itself) maps to that
    step; the fraud and funds steps' reasons map to none; the notes a step before fraud adds
    to a request it lets through are no decline reason."""
    seen: Counter[str] = Counter()
    for step, name in STEP_FILES.items():
        source = (STEPS_DIR / name).read_text()
        reasons = {r for call in _declines(source) for r in REASON.findall(call)}
        if step == "fraud":
            reasons.add("rules.decline")  # a rule's decline without a reason of its own
        for reason in reasons:
            expected = step if step in STEP_PREFIXES else None
            assert declined_before_fraud("05", reason) == expected, (step, reason)
            seen[step] += 1
        for note in NOTE.findall(source):
            if step in STEP_PREFIXES:
                assert note in PASS_NOTES, (step, note)
            assert declined_before_fraud("51", f"{note};funds.recheck") is None
    assert all(seen[step] for step in STEP_FILES), seen  # the reading found each step's


def _declines(source: str) -> list[str]:
    """The text of every ``Decline(...)`` call in ``source`` (to its closing parenthesis)."""
    calls = []
    for match in re.finditer(r"\bDecline\(", source):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(source)):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            if depth == 0:
                break
        calls.append(source[match.start() : end + 1])
    return calls


def test_a_trace_of_the_fraud_step_keeps_a_row_whatever_its_reason_says() -> None:
    # declined before: the first reason names the step
    assert declined_before_fraud("14", "card.unknown") == "card"
    assert declined_before_fraud("82", "cvv.icvv_failed") == "card_verification"
    assert declined_before_fraud("N7", "cvv.cvv2_failed;card.previous_expiry") == (
        "card_verification"
    )
    assert declined_before_fraud("55", "pin.wrong") == "pin"
    assert declined_before_fraud("61", "limits.per_transaction") == "controls"
    assert declined_before_fraud("13", "validate.amount") == "validate"
    for reason in SERVER_REASONS:
        assert declined_before_fraud("91", reason) == SERVER
    # the fraud step ran: a rule matched (an analyst's reason may start like a step's), the
    # model scored, or it ran out of time
    assert declined_before_fraud("05", "card.testing", rule_matches="CT-01") is None
    assert declined_before_fraud("59", "pin.guessing", fraud_score=812) is None
    assert declined_before_fraud("59", "card.x", model_score=3) is None
    assert declined_before_fraud("05", "card.x", challenger_score=0) is None
    assert declined_before_fraud("05", "card.x", model_skipped=True) is None
    # answered, or declined after the fraud step, or no reason to tell
    assert declined_before_fraud("00", "card.previous_expiry") is None
    assert declined_before_fraud("10", "funds.partial") is None
    assert declined_before_fraud("85", "verification") is None
    assert declined_before_fraud("51", "funds.insufficient") is None
    assert declined_before_fraud("51", "card.previous_expiry;funds.recheck") is None
    # the store's write refused what the whole pipeline approved (no rule, no model): its
    # reason comes first when the pipeline had none, and names an earlier step's prefix
    for refused in ("3ds.cavv_reused", "chip.atc_replay", "chip.atc_jump",
                    "pin.locked_meanwhile", "pin.change_conflict"):  # fmt: skip
        assert declined_before_fraud("05", refused) is None, refused
    assert declined_before_fraud("05", "") is None
    # a row: advices and reversals are not scored, whatever their answer
    row = {"message_class": "authorisation", "response_code": "14", "reason_codes": "card.unknown"}
    assert row_declined_before_fraud(row) == "card" and not scored_online(row)
    assert scored_online({**row, "response_code": "00", "reason_codes": ""})
    assert not scored_online(
        {**row, "message_class": "authorisation_advice", "response_code": "00"}
    )
    assert scored_online({"response_code": "00"})  # an export without the other columns


CONFIG = """
[split]
test_days = 6
gap_days = 2
[operating]
alert_rate = 0.02
top_k_cards = 10
[hgb]
max_iter = 25
class_weight = 5
"""


@pytest.fixture(scope="module")
def bin_attacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated traffic made mostly of BIN attacks: unknown numbers answered 14, a few real
    cards hit (some of them failing CVV2, N7), plus card testing (half failing CVV2)."""
    rates = ScenarioRates(card_testing=0.03, bin_attack=1.0)
    traffic = generate(TrafficConfig(cards=400, days=24, seed=3, rates=rates))
    path = tmp_path_factory.mktemp("bin") / "traffic.parquet"
    traffic.write(path)
    return path


def test_training_on_bin_attacks_evaluates_only_the_rows_the_fraud_step_scores(
    tmp_path: Path, bin_attacks: Path
) -> None:
    """Most BIN-attack frauds are unknown card numbers answered 14: the server never scores
    them, so the model neither learns from them nor is reported as catching them; the report
    counts them as left out, by step and scenario."""
    rows = pq.read_table(bin_attacks).to_pylist()
    kept = [r for r in rows if scored_online(r)]
    left_out = [r for r in rows if row_declined_before_fraud(r) is not None]
    assert len(kept) + len(left_out) == len(rows)  # the simulator journals no advice
    unknown = sum(r["response_code"] == "14" for r in left_out)
    assert unknown > len([r for r in rows if r["scenario"] == "bin_attack"]) * 0.8

    config = tmp_path / "train.toml"
    config.write_text(CONFIG)
    out = tmp_path / "models"
    result = CliRunner().invoke(
        app,
        ["train", "--data", str(bin_attacks), "--config", str(config), "--out", str(out),
         "-o", "table"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "left out" in result.output and "declined before scoring" in result.output
    report = json.loads(next((out / "runs").glob("*/report.json")).read_text())

    data = report["data"]
    assert data["rows_scored"] == len(kept)
    assert data["excluded_before_fraud_step"] == len(left_out)
    assert data["excluded_frauds"] == sum(r["label"] for r in left_out)
    assert data["excluded_by_step"] == dict(
        sorted(Counter(row_declined_before_fraud(r) for r in left_out).items())
    )
    assert set(data["excluded_by_step"]) == {"card", "card_verification", "pin"}  # 14, N7, 55

    # the test days: the last 6 days counted from the first scored row (training.time_split)
    origin = min(r["ts"] for r in kept)
    last = max(int((r["ts"] - origin) // DAY) for r in kept)
    on_test_days = [r for r in rows if (r["ts"] - origin) // DAY > last - 6]
    scored = [r for r in on_test_days if scored_online(r)]
    declined = [r for r in on_test_days if not scored_online(r)]
    assert report["test"]["rows"] == len(scored)
    assert report["test"]["frauds"] == sum(r["label"] for r in scored)
    assert report["test"]["excluded_before_fraud_step"] == len(declined)
    for kind in ("logistic", "hgb"):
        m = report["metrics"][kind]
        assert m["transactions"] == len(scored) and m["frauds"] == report["test"]["frauds"]
        assert m["excluded_before_fraud_step"] == len(declined)
        # a scenario's frauds: only the scored ones, caught or not
        for name, (hit, of) in m["recall_by_scenario"].items():
            assert of == sum(r["label"] and r["scenario"] == name for r in scored)
            assert 0 <= hit <= of
        left = Counter(r["scenario"] for r in declined if r["label"])
        assert m["excluded_frauds_by_scenario"] == dict(sorted(left.items()))
        bin_hit, bin_of = m["recall_by_scenario"].get("bin_attack", (0, 0))
        assert bin_of < m["excluded_frauds_by_scenario"]["bin_attack"] / 5
        meta = json.loads((out / f"{kind}-{report['run_id']}" / "model.json").read_text())
        assert meta["training_data"]["excluded_before_fraud_step"] == len(left_out)

    # the same rows, read the way training reads them
    labelled = load_labelled(bin_attacks)
    assert len(labelled) == len(kept) and len(labelled.excluded) == len(left_out)
    assert int(labelled.labels.sum()) == sum(r["label"] for r in kept)
