"""What the caller is told, in the council's words: the same on every platform (each
platform package speaks them in its own way). Pure functions of the policy."""

from __future__ import annotations

from app.recording_policy import Department, OptOutAction, Policy


def recording_notice(policy: Policy) -> str:
    return (
        "Calls to Harlow Council may be recorded, to help us monitor quality, to investigate "
        "complaints, and to detect and prevent crime, including fraud. If you would prefer "
        f"your call not to be recorded, press {policy.opt_out_digit} now."
    )


def opt_out_offer(policy: Policy) -> str:
    return f"If you would prefer your call not to be recorded, press {policy.opt_out_digit}."


def menu_prompt(policy: Policy) -> str:
    return " ".join(f"For {d.name}, press {d.ivr_digit}." for d in policy.menu())


def opt_out_message(department: Department) -> str:
    if department.opt_out is OptOutAction.ADVISE_EMAIL:
        return (
            f"{department.name} cannot take calls without recording them. If you would prefer "
            f"not to be recorded, please hang up and contact us by email at {department.email}."
        )
    return "Thank you. This call will not be recorded."


OPT_OUT_NOTED = "Your request not to be recorded has been noted."
NOT_A_CHOICE = "Sorry, that was not a valid choice."
TRANSFERRING = ("Please hold while we transfer your call.",)
FAIL_SAFE_NOTICE = (
    "Thank you for calling Harlow Council. Please hold while we connect you to an adviser."
)
FAIL_SAFE_RECORDED_NOTICE = (
    "Thank you for calling Harlow Council. Calls may be recorded for quality monitoring and "
    "the prevention of crime. Please hold while we connect you to an adviser."
)
