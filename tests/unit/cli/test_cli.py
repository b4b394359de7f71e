"""The CLI in-process: output, exit codes and error messages."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from flowbus.cli import ExitCode, main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SHOP = str(EXAMPLES / "shop" / "flowbus.yaml")


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_validate_prints_every_error_as_file_line_field_message(write_config):
    path = write_config(
        "flows:\n  - name: f\n    source: s\n    steps:\n      - {id: a, action: nope_step}\n      - {id: a, action: log, message: x}\n"
    )
    result = run("validate", str(path))
    assert result.exit_code == ExitCode.INVALID_CONFIG == 1
    assert result.output.splitlines() == [
        f"{path}:2: flows[0].event_type: a trigger flow needs both `source` and `event_type`; event_type is missing",
        f"{path}:6: flows[0].steps[1].id: step ids within a flow must be unique: flow 'f' uses id 'a' again (first at line 5)",
    ]


def test_validate_reports_each_file_and_fails_if_any_fails(write_config):
    bad = write_config("flows: 3\n", name="bad.yaml")
    result = run("validate", SHOP, str(bad))
    assert result.exit_code == 1
    assert result.output.splitlines()[0].startswith(f"{SHOP}: ok: project shop")
    assert f"{bad}:1: flows: Input should be a valid list" in result.output


def test_validate_names_an_unreadable_file(tmp_path):
    result = run("validate", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 1
    assert result.output.strip() == f"{tmp_path / 'missing.yaml'}:0: cannot read file: No such file or directory"


def test_validate_prints_warnings_and_still_succeeds(write_config):
    path = write_config("""
events: [{name: Ping, properties: {n: {type: Integer}}}]
flows:
  - {name: Echo, inputs: {n: {type: Integer}}, steps: [{id: p, action: publish, event: Ping, properties: {n: "=inputs.n"}}]}
handlers: [{name: h, event: Ping, flow: Echo, bindings: {n: n}}]
""")
    result = run("validate", str(path))
    assert result.exit_code == 0
    assert "warning: async cycle: Echo -> Echo" in result.output


def test_schema_is_json_schema_of_the_config_format():
    result = run("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {
        "project",
        "sources",
        "events",
        "flows",
        "handlers",
        "targets",
        "schedules",
        "retention",
    }
    assert "Flow" in schema["$defs"] and "PublishStep" in schema["$defs"]


def test_try_needs_exactly_one_of_source_event_or_flow():
    result = run("try", SHOP, "--data", "{}")
    assert result.exit_code == ExitCode.USAGE
    assert "give exactly one of --source, --event or --flow" in result.output


def test_try_rejects_data_that_is_not_json():
    result = run("try", SHOP, "--flow", "CreateOrder", "--data", "{nope")
    assert result.exit_code == 2
    assert "Invalid value for --data: not valid JSON" in result.output


def test_try_names_an_unknown_flow():
    result = run("try", SHOP, "--flow", "CreateOrdr", "--data", "{}")
    assert result.exit_code == 2
    assert "no flow 'CreateOrdr' is defined; did you mean: CreateOrder?" in result.output


def test_try_reports_bad_event_properties_by_name():
    result = run("try", SHOP, "--event", "OrderPlaced", "--data", '{"OrderId": "o1", "Bogus": 1}')
    assert result.exit_code == 2
    assert "OrderPlaced: CustomerId: required, but missing" in result.output
    assert "Bogus: not a declared property" in result.output


def test_try_without_a_type_and_no_type_path_is_a_usage_error():
    result = run("try", SHOP, "--source", "storefront", "--data", "{}")
    assert result.exit_code == 2
    assert "no --type given, and source 'storefront' has no event_type_from" in result.output


def test_try_with_an_invalid_config_exits_1(write_config):
    path = write_config("flows: [{name: f}]\n")
    result = run("try", str(path), "--flow", "f", "--data", "{}")
    assert result.exit_code == 1
    assert f"{path}:1: flows[0].steps: required field is missing" in result.output


def test_try_publishes_an_event_and_shows_its_handlers(write_config):
    path = write_config("""
events: [{name: Hello, properties: {who: {type: String, required: true}}}]
flows:
  - {name: Greet, inputs: {who: {type: String}}, steps: [{id: s, action: save, entity: Greeting, data: {id: "=inputs.who"}}]}
handlers:
  - {name: greet_now, event: Hello, flow: Greet, mode: sync, bindings: {who: who}}
  - {name: greet_later, event: Hello, flow: Greet, mode: async, bindings: {who: who}}
""")
    result = run("try", str(path), "--event", "Hello", "--data", '{"who": "ada"}')
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("event Hello v1 ")
    # one tree for the whole chain: the async handler's run joins the sync one under the event
    assert "├─ handler greet_now -> run Greet [succeeded]" in result.output
    assert "└─ handler greet_later -> run Greet [succeeded]" in result.output
    assert "store before async handlers: events 1, Greeting 1; queued messages: 1" in result.output
    assert "handler greet_later -> run Greet [succeeded]" in result.output


def test_try_exits_3_when_a_run_fails(write_config):
    path = write_config("flows: [{name: f, steps: [{id: x, action: fail, message: broken}]}]\n")
    result = run("try", str(path), "--flow", "f", "--data", "{}")
    assert result.exit_code == ExitCode.RUN_FAILED == 3
    assert "run f [failed]" in result.output and "broken" in result.output


def test_try_reads_yaml_data_files(write_config, tmp_path):
    path = write_config(
        "flows: [{name: f, inputs: {n: {type: Decimal}}, steps: [{id: o, action: output, values: {n: '=inputs.n * 2'}}]}]\n"
    )
    data = tmp_path / "in.yaml"
    data.write_text("n: 0.1\n")
    result = run("try", str(path), "--flow", "f", "--data", f"@{data}", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["trace"][0]["outputs"] == {"n": 0.2}
    assert '"n": 0.2' in result.output


def test_validate_warns_of_a_flow_that_never_runs_and_still_exits_0(write_config):
    path = write_config("flows:\n  - {name: lost, steps: [{id: a, action: log, message: hi}]}\n")
    result = run("validate", str(path))
    assert result.exit_code == ExitCode.OK == 0
    assert f"{path}:2: flows[0].name: warning: flow 'lost' never runs" in result.output


def test_schema_of_events_gives_one_schema_per_event_version_with_distinct_ids_and_titles(write_config):
    path = write_config("""
project: {name: shop}
events:
  - {name: OrderPlaced, properties: {OrderId: {type: String, required: true}}}
  - {name: OrderPlaced, version: 2, properties: {OrderId: {type: String, required: true}, Channel: {type: String}}}
  - {name: Paid}
""")
    result = run("schema", "--events", str(path))
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["title"] == "events of project shop"
    schemas = document["$defs"]
    assert list(schemas) == ["OrderPlaced.v1", "OrderPlaced.v2", "Paid.v1"]
    assert [s["title"] for s in schemas.values()] == ["OrderPlaced v1", "OrderPlaced v2", "Paid v1"]
    assert schemas["OrderPlaced.v2"]["$id"] == "urn:flowbus:shop:event:OrderPlaced:v2"
    assert len({s["$id"] for s in schemas.values()}) == 3
    assert set(schemas["OrderPlaced.v1"]["properties"]) == {"OrderId"}
    assert set(schemas["OrderPlaced.v2"]["properties"]) == {"OrderId", "Channel"}
    assert schemas["OrderPlaced.v2"]["additionalProperties"] is False


def test_schema_of_events_of_an_invalid_config_exits_1(write_config):
    path = write_config("events: [{name: E}, {name: E}]\n")
    result = run("schema", "--events", str(path))
    assert result.exit_code == ExitCode.INVALID_CONFIG
    assert "event names must be unique" in result.output


def test_init_refuses_to_overwrite_a_file_and_names_it(tmp_path):
    (tmp_path / "flowbus.yaml").write_text("mine\n")
    result = run("init", str(tmp_path))
    assert result.exit_code == ExitCode.FAILED
    assert f"error: {tmp_path / 'flowbus.yaml'}: already there; flowbus init overwrites files only with --force" in (
        result.stderr
    )
    assert (tmp_path / "flowbus.yaml").read_text() == "mine\n" and not (tmp_path / "signup.json").exists()
    forced = run("init", str(tmp_path), "--force")
    assert forced.exit_code == 0 and "project:" in (tmp_path / "flowbus.yaml").read_text()


def test_init_names_the_project_after_its_directory(tmp_path):
    assert run("init", str(tmp_path / "my shop")).exit_code == 0
    assert "  name: my_shop\n" in (tmp_path / "my shop" / "flowbus.yaml").read_text()
    assert run("init", str(tmp_path / "2026"), "--json").exit_code == 0
    assert "  name: starter\n" in (tmp_path / "2026" / "flowbus.yaml").read_text()


def test_init_in_a_directory_whose_name_is_too_long_for_a_project_names_it_starter_and_validates(tmp_path):
    directory = tmp_path / ("d" * 140)
    assert run("init", str(directory)).exit_code == 0
    assert "  name: starter\n" in (directory / "flowbus.yaml").read_text()
    assert run("validate", str(directory / "flowbus.yaml")).exit_code == 0
    exact = tmp_path / ("e" * 128)
    assert run("init", str(exact)).exit_code == 0
    assert f"  name: {'e' * 128}\n" in (exact / "flowbus.yaml").read_text()


def test_worker_run_and_serve_share_one_log_level_option_that_refuses_other_levels():
    for command in ("worker", "run", "serve"):
        help_text = run(command, "--help").output
        assert "--log-level [debug|info|warning|error]" in help_text and "FLOWBUS_LOG_LEVEL" in help_text
    refused = run("worker", "--log-level", "chatty")
    assert refused.exit_code == ExitCode.USAGE and "'chatty' is not one of 'debug', 'info'" in refused.output


def test_schema_of_events_of_a_missing_file_is_a_usage_error_like_every_other_file_argument(tmp_path):
    result = run("schema", "--events", str(tmp_path / "missing.yaml"))
    assert result.exit_code == ExitCode.USAGE == 2
    assert "does not exist" in result.output
