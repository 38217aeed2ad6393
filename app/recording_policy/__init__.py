"""Pure recording policy: the validated policy file and the recording decision engine."""

from .duration import IsoDuration, add_duration, parse_duration
from .engine import CallFacts, Decision, DesiredState, FailSafe, Reason, decide
from .model import (
    DEFAULT_POLICY_PATH,
    Department,
    OptOutAction,
    Policy,
    PolicyError,
    Problem,
    load_policy_data,
    load_policy_file,
    load_policy_text,
)
from .wording import REASON_TEXT

__all__ = [
    "DEFAULT_POLICY_PATH",
    "REASON_TEXT",
    "CallFacts",
    "Decision",
    "Department",
    "DesiredState",
    "FailSafe",
    "IsoDuration",
    "OptOutAction",
    "Policy",
    "PolicyError",
    "Problem",
    "Reason",
    "add_duration",
    "decide",
    "load_policy_data",
    "load_policy_file",
    "load_policy_text",
    "parse_duration",
]
