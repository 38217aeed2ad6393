"""The operator CLI: users, policy check/activate, migrate."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.people.users import user_for_token
from app.recording_policy import DEFAULT_POLICY_PATH
from app.storage.db import make_engine, make_session_factory
from app.storage.models import PolicyActivation, User

FIXTURES = Path(__file__).parent / "fixtures" / "policies"
runner = CliRunner()


@pytest.fixture
def env(migrated_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALLGUARD_DATABASE_URL", migrated_url)
    return migrated_url


def _session(url: str):
    return make_session_factory(make_engine(url))()


def test_users_add_prints_the_token_last_and_disable_revokes(env: str) -> None:
    result = runner.invoke(cli, ["users", "add", "alice", "--role", "agent"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    with _session(env) as session:
        assert user_for_token(session, token).name == "alice"
    assert runner.invoke(cli, ["users", "disable", "alice"]).exit_code == 0
    with _session(env) as session:
        assert user_for_token(session, token) is None
        assert session.scalars(select(User)).one().disabled_at is not None


def test_users_add_refuses_a_duplicate_and_a_bad_role(env: str) -> None:
    assert runner.invoke(cli, ["users", "add", "bob", "--role", "admin"]).exit_code == 0
    again = runner.invoke(cli, ["users", "add", "bob", "--role", "admin"])
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(cli, ["users", "add", "carol", "--role", "janitor"])
    assert bad.exit_code == 2


def test_disable_unknown_user_fails(env: str) -> None:
    result = runner.invoke(cli, ["users", "disable", "nobody"])
    assert result.exit_code == 1


def test_policy_check_good_and_bad() -> None:
    good = runner.invoke(cli, ["policy", "check", str(DEFAULT_POLICY_PATH)])
    assert good.exit_code == 0 and "valid" in good.output
    bad = runner.invoke(cli, ["policy", "check", str(FIXTURES / "bad-missing-email.toml")])
    assert bad.exit_code == 1
    assert "bad-missing-email.toml" in bad.output and "email" in bad.output


def test_policy_check_names_the_line_and_department_one_problem_a_line(tmp_path: Path) -> None:
    # The default policy with the typo, then a value that reads as console markup.
    source = DEFAULT_POLICY_PATH.read_text()
    typo = source.replace('retention = "P2Y130D"', 'retention = "P13OD"', 1)
    number = typo.splitlines().index('retention = "P13OD"') + 1
    digit = typo.splitlines().index('opt_out_digit = "9"') + 1
    file = tmp_path / "policy.toml"
    file.write_text(typo.replace('opt_out_digit = "9"', 'opt_out_digit = "[/red][bold]9"'))
    result = runner.invoke(cli, ["policy", "check", str(file)])
    assert result.exit_code == 1
    # Each problem on a line of its own, never wrapped, whatever the terminal's width.
    assert result.output.splitlines() == [
        f"invalid policy: {file}:{digit}: opt_out_digit: '[/red][bold]9' is not a single keypad"
        " digit 0-9",
        f"{file}:{number}: departments[1] (id \"revenues-and-benefits\").retention: 'P13OD' is"
        " not an ISO-8601 duration such as P130D or P2Y130D",
    ]


def test_policy_activate_stores_each_distinct_content_once(env: str, tmp_path: Path) -> None:
    source = DEFAULT_POLICY_PATH.read_text()
    first = runner.invoke(cli, ["policy", "activate", str(DEFAULT_POLICY_PATH)])
    assert first.exit_code == 0 and "version 1" in first.output
    changed = tmp_path / "changed.toml"
    changed.write_text(source.replace('opt_out_digit = "9"', 'opt_out_digit = "0"'))
    second = runner.invoke(cli, ["policy", "activate", str(changed)])
    assert "version 2 activated" in second.output
    reformatted = tmp_path / "comments.toml"
    reformatted.write_text("# only a comment differs\n" + source)
    third = runner.invoke(cli, ["policy", "activate", str(reformatted)])
    assert "version 1 activated" in third.output  # same content as version 1
    with _session(env) as session:
        versions = [a.version for a in session.scalars(select(PolicyActivation))]
    assert versions == [1, 2, 1]


def test_policy_activate_refuses_a_bad_file(env: str) -> None:
    result = runner.invoke(cli, ["policy", "activate", str(FIXTURES / "bad-retention.toml")])
    assert result.exit_code == 1 and "retention" in result.output
    with _session(env) as session:
        assert session.scalars(select(PolicyActivation)).all() == []


def test_migrate(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLGUARD_DATABASE_URL", database_url)
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output


def test_a_bad_setting_is_named_by_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLGUARD_FAIL_SAFE", "sometimes")
    result = runner.invoke(cli, ["users", "add", "x", "--role", "agent"])
    assert result.exit_code == 2
    assert "CALLGUARD_FAIL_SAFE" in result.output


@pytest.mark.parametrize(
    ("command", "across_a_source_line_break"),
    [
        ([], "as the configured platform would (CALLGUARD_PROVIDER: the simulator"),
        (["simulate"], "pauses for a card payment, then ends it"),
        (["simulate"], "as a supervisor, with --token or CALLGUARD_TOKEN. Without either"),
        (["policy"], "the destruction dates it would give (which are not changed"),
        (["policy", "dry-run"], "the destruction dates it would give (which are not changed"),
    ],
)
def test_help_reflows_paragraphs_instead_of_breaking_sentences(
    command: list[str], across_a_source_line_break: str
) -> None:
    """Issue 14 item 8: a docstring's source line breaks never show in --help: on a wide
    terminal, words the source splits across two lines are on one."""
    result = runner.invoke(cli, [*command, "--help"], env={"COLUMNS": "400", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    assert any(across_a_source_line_break in line for line in result.output.splitlines())
