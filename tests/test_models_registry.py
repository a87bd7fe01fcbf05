"""Model registry: champion/challenger activation, atomic pointer file, rollback; the service."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_e2e_auth import store_url  # noqa: F401 - fixture
from typer.testing import CliRunner

from authhost.cli.app import app
from authhost.models.artifact import write_artifact
from authhost.models.context import replay_contexts
from authhost.models.features import FEATURE_NAMES, N_FEATURES
from authhost.models.registry import ACTIVE_FILE, Registry, RegistryError
from authhost.models.serving import ModelService
from authhost.models.synthetic import generate_rows
from authhost.models.terminal_risk import TerminalRisk


def _logistic(root: Path, name: str, bias: float, created: str) -> Path:
    """A tiny logistic artifact whose score is decided by ``bias`` (feature 0 is amount_log)."""
    coef = np.zeros(N_FEATURES)
    coef[0] = 0.5
    arrays = {"coef": coef, "intercept": np.array([bias])}
    meta = {"threshold": 800, "created": created, "metrics": {"average_precision": 0.5}}
    return write_artifact(root / name, "logistic", arrays, TerminalRisk(), meta)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    for i, bias in enumerate((-6.0, -2.0, 1.0)):
        _logistic(tmp_path, f"lr-{i}", bias, f"2026-01-0{i + 1}")
    (tmp_path / "runs").mkdir()  # reports live beside artifacts and are not artifacts
    return Registry(tmp_path)


def test_list_shows_artifacts_in_creation_order(registry: Registry) -> None:
    assert [a.name for a in registry.list()] == ["lr-0", "lr-1", "lr-2"]
    assert registry.state().champion is None


def test_activate_then_rollback(registry: Registry) -> None:
    registry.activate("lr-0")
    registry.activate("lr-1")
    state = registry.activate("lr-2", challenger=True)
    assert (state.champion, state.challenger, state.history) == ("lr-1", "lr-2", ["lr-0"])
    on_disk = json.loads((registry.root / ACTIVE_FILE).read_text())
    changes = on_disk.pop("changes")  # the change log (models.registry), oldest first
    assert on_disk == {"champion": "lr-1", "challenger": "lr-2", "history": ["lr-0"]}
    assert [(c["action"], c["champion"], c["challenger"]) for c in changes] == [
        ("activate", "lr-0", None), ("activate", "lr-1", None), ("challenger", "lr-1", "lr-2")
    ]  # fmt: skip
    state = registry.rollback()
    assert (state.champion, state.challenger, state.history) == ("lr-0", "lr-2", [])
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback()
    # promoting the challenger clears it as challenger
    state = registry.activate("lr-2")
    assert (state.champion, state.challenger) == ("lr-2", None)
    assert not [p for p in registry.root.iterdir() if p.name.startswith(".active")]


def test_a_rollback_to_the_challenger_leaves_no_challenger(registry: Registry) -> None:
    registry.activate("lr-0")
    registry.activate("lr-1")
    registry.activate("lr-0", challenger=True)  # the old champion tried again in shadow
    state = registry.rollback()
    assert (state.champion, state.challenger) == ("lr-0", None)  # not its own challenger


def test_broken_or_unknown_artifacts_are_never_activated(registry: Registry) -> None:
    registry.activate("lr-0")
    (registry.root / "lr-1" / "arrays.npz").write_bytes(b"garbage")
    with pytest.raises(RegistryError, match="SHA-256"):
        registry.activate("lr-1")
    with pytest.raises(RegistryError, match="no artifact named"):
        registry.activate("lr-9")
    with pytest.raises(RegistryError, match="not an artifact name"):
        registry.activate("../etc")
    assert registry.state().champion == "lr-0"
    broken = {a.name: a.error for a in registry.list()}
    assert broken["lr-0"] == "" and broken["lr-1"] == ""  # metadata itself is still fine


def test_service_scores_champion_and_shadow_challenger(registry: Registry) -> None:
    ctx = next(ctx for _, ctx in replay_contexts(generate_rows(cards=3, days=2, seed=1)))
    assert ModelService.from_dir(registry.root).score(ctx) == (None, None)
    registry.activate("lr-0")
    registry.activate("lr-2", challenger=True)
    service = ModelService.from_dir(registry.root)
    champion, challenger = service.score(ctx)
    assert champion is not None and challenger is not None
    assert champion < challenger  # the challenger's larger bias scores higher
    registry.activate("lr-2")
    registry.clear_challenger()
    service.reload()
    assert service.score(ctx) == (challenger, None)


@pytest.mark.parametrize(
    "content", ["{not json", '{"champion": 5}', "[1, 2]"], ids=["broken", "wrong type", "a list"]
)
def test_unreadable_active_file_is_a_clear_error(registry: Registry, content: str) -> None:
    (registry.root / ACTIVE_FILE).write_text(content)
    with pytest.raises(RegistryError, match="activate a model again"):
        registry.state()
    with pytest.raises(RegistryError):
        ModelService.from_dir(registry.root)


def test_service_explains_scores_from_its_threshold(tmp_path: Path) -> None:
    """Reasons only where they are worth the time: from ``explain_from``, or by default from
    the champion's own operating threshold (800 here); feature 0 (amount_log) is the one that
    raises the score."""
    coef = np.zeros(N_FEATURES)
    coef[0] = 0.5
    arrays = {"coef": coef, "intercept": np.array([1.0]), "mean": np.zeros(N_FEATURES)}
    write_artifact(tmp_path / "lr", "logistic", arrays, TerminalRisk(), {"threshold": 800})
    Registry(tmp_path).activate("lr")
    rows = generate_rows(cards=3, days=2, seed=1)
    ctx = next(ctx for _, ctx in replay_contexts(rows) if ctx.amount_minor > 0)
    score, _ = ModelService.from_dir(tmp_path).score(ctx)
    assert score is not None and score >= 800
    share = 0.5 * np.log1p(ctx.amount_minor / 100.0)
    assert ModelService.from_dir(tmp_path).explain(ctx, score) == f"amount_log={share:+.2f}"
    assert ModelService.from_dir(tmp_path).explain(ctx, 799) == ""
    assert ModelService.from_dir(tmp_path, explain_from=1000).explain(ctx, score) == ""
    assert ModelService.from_dir(tmp_path, explain_from=0).explain(ctx, 0) != ""
    # the server's own action threshold, when lower, is where reasons start
    assert ModelService.from_dir(tmp_path, action_threshold=700).explain(ctx, 750) != ""
    assert ModelService.from_dir(tmp_path, action_threshold=900).explain(ctx, 850) != ""
    assert ModelService.from_dir(tmp_path, action_threshold=900).explain(ctx, 799) == ""


def test_explain_from_is_checked() -> None:
    from authhost.config import ConfigError, ModelsConfig

    with pytest.raises(ConfigError, match="explain_from must be -1 to 1000"):
        ModelsConfig(explain_from=-2)


def test_an_explanation_that_fails_costs_no_decision(caplog: pytest.LogCaptureFixture) -> None:
    class Failing:  # a champion whose explanation breaks (a model this code cannot explain)
        name, threshold = "broken", 0

        def explain(self, ctx: object) -> list[tuple[str, float]]:
            raise FloatingPointError("overflow")

    ctx = next(ctx for _, ctx in replay_contexts(generate_rows(cards=3, days=2, seed=1)))
    service = ModelService(Failing())  # type: ignore[arg-type]
    assert service.explain(ctx, 500) == ""
    assert "explaining the score of model broken failed" in caplog.text


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("metrics", 5, "'metrics' must be an object of figures"),
        ("metrics", "0.9", "'metrics' must be an object of figures"),
        ("created", ["2026-01-02"], "'created' must be a text"),
        # not a text: a TypeError (unhashable) from the lookup, a traceback for models list
        ("amount_units", ["currency"], "'currency'] is not one this authhost"),
        ("feature_set", {"name": "authhost-features-1"}, "built for feature set {'name'"),
    ],
)
def test_a_damaged_model_json_is_listed_with_its_error_and_never_activated(
    registry: Registry, key: str, value: object, message: str
) -> None:
    """`models list` raised a TypeError (a traceback) on metrics that were not an object,
    and on an amount_units or a feature_set that was not a text."""
    path = registry.root / "lr-1" / "model.json"
    meta = json.loads(path.read_text())
    meta[key] = value
    path.write_text(json.dumps(meta))
    errors = {a.name: a.error for a in registry.list()}
    assert message in errors["lr-1"] and errors["lr-0"] == ""
    with pytest.raises(RegistryError, match=message):
        registry.activate("lr-1")


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda names: names[:-1], f"1 missing: {FEATURE_NAMES[-1]}"),
        (lambda names: [*names, "zip_risk"], "1 unknown: zip_risk"),
        (lambda names: [names[1], names[0], *names[2:]], "the same names in another order"),
    ],
    ids=["one missing", "one unknown", "reordered"],
)
def test_an_artifact_whose_features_differ_from_its_set_says_which(
    registry: Registry, edit, said: str
) -> None:
    """The refusal named the artifact's set as one this authhost does not compute while
    listing that very set ("built for feature set 'authhost-features-1', this authhost
    computes 'authhost-features-1' and ..."): nothing told the analyst what was wrong."""
    path = registry.root / "lr-1" / "model.json"
    meta = json.loads(path.read_text())
    meta["features"] = edit(list(meta["features"]))
    path.write_text(json.dumps(meta))
    with pytest.raises(RegistryError) as caught:
        registry.activate("lr-1")
    message = str(caught.value)
    assert said in message and "retrain the model" in message
    assert "this authhost computes 'authhost-features-1' and" not in message


def test_models_list_says_which_artifacts_read_amounts_with_two_decimals(
    registry: Registry,
) -> None:
    """An artifact trained before amounts were read in each currency's decimals reads a yen
    card's 10,000 as 100.00: the analyst of a bank with yen cards needs to see which."""
    path = registry.root / "lr-1" / "model.json"
    meta = json.loads(path.read_text())
    del meta["amount_units"]  # as written before 2026-11-29
    path.write_text(json.dumps(meta))
    units = {a.name: a.amount_units for a in registry.list()}
    assert units == {"lr-0": "currency", "lr-1": "two_decimals", "lr-2": "currency"}
    listed = CliRunner().invoke(app, ["models", "list", "--dir", str(registry.root), "--json"])
    assert listed.exit_code == 0, listed.output
    by_name = {a["name"]: a["amount_units"] for a in json.loads(listed.output)["artifacts"]}
    assert by_name == units
    table = CliRunner().invoke(app, ["models", "list", "--dir", str(registry.root), "-o", "table"])
    assert "2 decimals" in table.output and "currency" in table.output


def test_model_changes_are_audited_in_the_store_with_before_and_after(
    tmp_path: Path,
    store_url: str,  # noqa: F811
) -> None:
    """`authhost models activate`, `rollback` and `clear-challenger` changed the model that
    decides every authorisation and wrote no audit entry (PCI DSS 10.2): only the models
    directory's own change log, which whoever changes the models can rewrite, knew."""
    runner = CliRunner()
    assert runner.invoke(app, ["demo", "--store", store_url]).exit_code == 0
    for i, bias in enumerate((-6.0, -2.0)):
        _logistic(tmp_path / "models", f"lr-{i}", bias, f"2026-01-0{i + 1}")
    config = tmp_path / "models.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    where = ["--config", str(config), "--dir", str(tmp_path / "models")]
    for command in (
        ["activate", "lr-0"], ["activate", "lr-1"], ["activate", "lr-0", "--challenger"],
        ["rollback"], ["activate", "lr-1", "--challenger"], ["clear-challenger"],
    ):  # fmt: skip
        done = runner.invoke(app, ["models", *command, *where])
        assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["models", "clear-challenger", *where])  # none left: no entry
    assert again.exit_code == 0 and "no challenger" in again.output, again.output
    listed = runner.invoke(app, ["audit", "list", "-o", "json", "--limit", "1000",
                                 "--store", store_url])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    entries = [e for e in json.loads(listed.stdout) if e["action"].startswith("model.")]
    entries.sort(key=lambda e: e["audit_id"])

    def roles(side: str) -> tuple[str | None, str | None]:
        return (side and json.loads(side)["champion"], side and json.loads(side)["challenger"])

    assert [
        (e["action"], e["subject"], roles(e["before"]), roles(e["after"])) for e in entries
    ] == [
        ("model.activate", "models", (None, None), ("lr-0", None)),
        ("model.activate", "models", ("lr-0", None), ("lr-1", None)),
        ("model.challenger", "models", ("lr-1", None), ("lr-1", "lr-0")),
        ("model.rollback", "models", ("lr-1", "lr-0"), ("lr-0", None)),
        ("model.challenger", "models", ("lr-0", None), ("lr-0", "lr-1")),
        ("model.clear_challenger", "models", ("lr-0", "lr-1"), ("lr-0", None)),
    ]
    assert all(e["actor"].startswith("cli") for e in entries)
    verified = runner.invoke(app, ["audit", "verify", "--store", store_url])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"], verified.output
