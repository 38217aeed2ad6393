"""The JSON bodies the stand-in answers with, member for member as the output shapes name them.

Timestamps are epoch seconds (restJson1's default); members Connect would leave out are
left out rather than sent as null. The server checks every body against the operation's
output shape before sending it (`ServiceIndex.output_problems`).
"""

from __future__ import annotations

from typing import Any

from .state import Contact, Queue, User


def contact_json(contact: Contact, region: str) -> dict[str, Any]:
    """DescribeContactResponse.Contact"""
    body: dict[str, Any] = {
        "Arn": contact.arn,
        "Id": contact.id,
        "InitialContactId": contact.initial_contact_id,
        "InitiationMethod": contact.initiation_method,
        "Channel": contact.channel,
        "InitiationTimestamp": contact.initiated_at,
        "LastUpdateTimestamp": contact.disconnected_at or contact.initiated_at,
    }
    if contact.previous_contact_id:
        body["PreviousContactId"] = contact.previous_contact_id
    if contact.queue_id:
        body["QueueInfo"] = {"Id": contact.queue_id, "EnqueueTimestamp": contact.enqueued_at}
    if contact.disconnected_at is not None:
        body["DisconnectTimestamp"] = contact.disconnected_at
    if contact.next_contacts:
        body["NextContacts"] = [
            {
                "Type": "QUICK_CONNECT",
                "NextContactMetadata": {
                    "QuickConnectContactData": {"ContactId": cid, "InitiationTimestamp": at}
                },
            }
            for cid, at in contact.next_contacts
        ]
    rec = contact.recording
    if rec is not None and rec.written and rec.location:
        body["Recordings"] = [
            {
                "StorageType": "S3",
                "Location": rec.location,
                "MediaStreamType": "AUDIO",
                "ParticipantType": "ALL",
                "StartTimestamp": rec.started_at,
                "StopTimestamp": rec.stopped_at or contact.disconnected_at,
                "Status": "AVAILABLE",
            }
        ]
    return body


def queue_summary_json(queue: Queue, region: str) -> dict[str, Any]:
    """ListQueuesResponse.QueueSummaryList[]"""
    body: dict[str, Any] = {
        "Id": queue.id,
        "Arn": queue.arn,
        "QueueType": queue.queue_type,
        "LastModifiedTime": queue.modified_at,
        "LastModifiedRegion": region,
    }
    if queue.name is not None:
        body["Name"] = queue.name
    return body


def error_json(message: str) -> dict[str, str]:
    # restJson1 errors: the code travels in x-amzn-ErrorType, the text in "message".
    return {"message": message}


def user_json(user: User, region: str) -> dict[str, Any]:
    """DescribeUserResponse.User"""
    return {
        "Id": user.id,
        "Arn": user.arn,
        "Username": user.username,
        "LastModifiedTime": user.modified_at,
        "LastModifiedRegion": region,
    }
