"""The CloudFormation stack a council deploys (deploy/connect/template.yaml): cfn-lint, AWS's
own template validator, finds nothing in it (errors, warnings or informational notes) for
regions that run Amazon Connect; its inline copies of the forwarder and the contact flow are
the source files; and it wires what the contract says: the flow's Lambda, the contact-event
rule to /webhooks/connect/events with X-Callguard-Token, retries and a dead-letter queue,
and least-privilege roles."""

from __future__ import annotations

import importlib.util
import json
import re
import types
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint
from cfnlint.decode.decode import decode_str

HERE = Path(__file__).resolve().parents[2] / "deploy" / "connect"
TEXT = (HERE / "template.yaml").read_text(encoding="utf-8")
TEMPLATE, _ = decode_str(TEXT)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
PARAMETERS: dict[str, Any] = TEMPLATE["Parameters"]
CONNECT_REGIONS = ["eu-west-2", "us-east-1", "eu-central-1", "ap-southeast-2", "ca-central-1"]


def props(name: str) -> dict[str, Any]:
    return RESOURCES[name]["Properties"]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in document["Statement"] if isinstance(s, dict) and "Effect" in s]


def actions(document: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in statements(document):
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


@pytest.fixture(scope="module")
def package() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("connect_package", HERE / "package.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cfn_lint_finds_nothing() -> None:
    config = ManualArgs(regions=CONNECT_REGIONS, include_checks=["I"])
    matches = lint(TEXT, config=config)
    assert [f"{m.rule.id} line {m.linenumber}: {m.message}" for m in matches] == []


def test_cfn_lint_would_find_a_mistake() -> None:
    """The check above can fail: the same run on a broken copy reports it."""
    broken = TEXT.replace("Runtime: python3.12", "Runtime: python2.7", 1)
    broken = broken.replace("IntegrationType: LAMBDA_FUNCTION", "IntegrationType: LAMBDA", 1)
    ids = {m.rule.id for m in lint(broken, config=ManualArgs(regions=["eu-west-2"]))}
    assert ids & {"E2531", "E3030"}, ids


def test_the_inline_code_is_the_forwarder() -> None:
    forwarder = props("Forwarder")
    assert forwarder["Code"]["ZipFile"] == (HERE / "lambda_forwarder.py").read_text("utf-8")
    # CloudFormation writes inline code to index.py.
    assert forwarder["Handler"] == "index.handler"
    assert forwarder["Runtime"] == "python3.12"


def test_both_flows_are_the_example_flow() -> None:
    flow = json.loads((HERE / "contact-flow.json").read_text("utf-8"))
    flows = {r["Properties"]["Type"]: r for r in RESOURCES.values() if r["Type"].endswith("Flow")}
    assert set(flows) == {"CONTACT_FLOW", "QUEUE_TRANSFER"}
    for resource in flows.values():
        assert json.loads(resource["Properties"]["Content"]["Fn::Sub"]) == flow
        # Connect refuses a flow naming a Lambda the instance does not know yet.
        assert set(resource["DependsOn"]) == {"ForwarderIntegration", "ForwarderPermission"}


def test_the_copies_are_current(package: types.ModuleType) -> None:
    assert package.main(["--check"]) == 0


def test_package_writes_a_changed_forwarder_in(package: types.ModuleType) -> None:
    code = '"""A changed forwarder."""\n\n\ndef handler(event, context):\n    return {}\n'
    rendered = package.render(TEXT, code, package.flow_text())
    template, _ = decode_str(rendered)
    assert template["Resources"]["Forwarder"]["Properties"]["Code"]["ZipFile"] == code
    assert package.render(rendered, code, package.flow_text()) == rendered
    assert (
        package.render(
            rendered, (HERE / "lambda_forwarder.py").read_text("utf-8"), package.flow_text()
        )
        == TEXT
    )


def test_the_template_deploys_without_a_bucket() -> None:
    """aws cloudformation deploy sends a template of up to 51,200 bytes itself."""
    assert len(TEXT.encode()) <= 51_200


def test_the_forwarder_is_configured_with_what_it_reads() -> None:
    source = (HERE / "lambda_forwarder.py").read_text("utf-8")
    read = set(re.findall(r'os\.environ\.get\("(\w+)"', source))
    configured = set(props("Forwarder")["Environment"]["Variables"])
    assert configured <= read
    assert configured == read - {"CALLGUARD_CONNECT_TOKEN"}  # the secret, not the plain token
    variables = props("Forwarder")["Environment"]["Variables"]
    assert variables["CALLGUARD_CONNECT_TOKEN_SECRET"] == {"Ref": "TokenSecret"}
    assert props("TokenSecret")["SecretString"] == {"Ref": "CallguardToken"}


def test_the_timeouts_nest_inside_connects() -> None:
    """callguard's wait < the Lambda's own limit < Connect's 8 s for the invocation."""
    lambda_timeout = props("Forwarder")["Timeout"]
    assert PARAMETERS["ForwarderTimeoutSeconds"]["MaxValue"] + 1 <= lambda_timeout < 8
    assert PARAMETERS["ForwarderTimeoutSeconds"]["Default"] == 3


def test_the_token_is_never_echoed() -> None:
    assert PARAMETERS["CallguardToken"]["NoEcho"] is True
    assert PARAMETERS["CallguardToken"]["MinLength"] >= 32


def test_connect_may_invoke_the_forwarder_for_this_instance_only() -> None:
    permission = props("ForwarderPermission")
    assert permission["Principal"] == "connect.amazonaws.com"
    assert permission["Action"] == "lambda:InvokeFunction"
    assert permission["SourceArn"] == {"Ref": "ConnectInstanceArn"}
    association = props("ForwarderIntegration")
    assert association["IntegrationType"] == "LAMBDA_FUNCTION"
    assert association["IntegrationArn"] == {"Fn::GetAtt": ["Forwarder", "Arn"]}


def test_the_forwarders_role_writes_logs_and_reads_the_token_only() -> None:
    [policy] = props("ForwarderRole")["Policies"]
    assert actions(policy["PolicyDocument"]) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "secretsmanager:GetSecretValue",
    }
    resources = [s["Resource"] for s in statements(policy["PolicyDocument"])]
    assert resources == [{"Fn::GetAtt": ["ForwarderLogGroup", "Arn"]}, {"Ref": "TokenSecret"}]


def test_contact_events_of_this_instance_go_to_callguards_events_endpoint() -> None:
    rule = props("ContactEventsRule")
    assert rule["EventPattern"] == {
        "source": ["aws.connect"],
        "detail-type": ["Amazon Connect Contact Event"],
        "detail": {"instanceArn": [{"Ref": "ConnectInstanceArn"}]},
    }
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["EventsDestination", "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}
    destination = props("EventsDestination")
    assert destination["InvocationEndpoint"] == {
        "Fn::Sub": "${CallguardUrl}/webhooks/connect/events"
    }
    assert destination["HttpMethod"] == "POST"
    assert destination["InvocationRateLimitPerSecond"] == {"Ref": "EventsRateLimitPerSecond"}
    connection = props("EventsConnection")
    assert connection["AuthorizationType"] == "API_KEY"
    assert connection["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "X-Callguard-Token",
        "ApiKeyValue": {"Ref": "CallguardToken"},
    }


def test_the_rules_role_and_the_dead_letter_queue_admit_only_that_rule() -> None:
    [policy] = props("EventsRole")["Policies"]
    assert actions(policy["PolicyDocument"]) == {"events:InvokeApiDestination"}
    [statement] = statements(policy["PolicyDocument"])
    assert statement["Resource"] == {"Fn::GetAtt": ["EventsDestination", "Arn"]}
    [allow] = statements(props("EventsDeadLetterQueuePolicy")["PolicyDocument"])
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ContactEventsRule", "Arn"]}}
    }


def test_callguards_own_policy_is_exactly_what_it_needs() -> None:
    document = props("CallguardServicePolicy")["PolicyDocument"]
    assert actions(document) == {
        "connect:StartContactRecording",
        "connect:SuspendContactRecording",
        "connect:ResumeContactRecording",
        "connect:StopContactRecording",
        "connect:DescribeContact",
        "connect:ListQueues",
        "connect:DescribeUser",
        "s3:GetObject",
        "s3:ListBucketVersions",
        "s3:DeleteObjectVersion",
    }
    readme = (HERE / "README.md").read_text("utf-8")
    for action in actions(document):
        assert action in readme, f"README.md does not list {action}"
