"""Everything callguard holds of one Amazon Connect instance, built once per process: its
settings, boto3's clients, the queue ARNs, contacts, agents, the S3 store and the flow's
answers. `PhonePlatform.client` returns it; the package's other parts take what they use."""

from __future__ import annotations

from dataclasses import dataclass

from app.platforms.connect.answers import FlowAnswers
from app.platforms.connect.aws import AwsClients, make_clients
from app.platforms.connect.contacts import Contacts
from app.platforms.connect.people import People
from app.platforms.connect.queues import QueueArns
from app.platforms.connect.settings import ConnectSettings
from app.platforms.connect.storage import Locations, S3Recordings


@dataclass
class ConnectClient:
    settings: ConnectSettings
    aws: AwsClients
    queues: QueueArns
    contacts: Contacts
    people: People
    store: S3Recordings
    answers: FlowAnswers

    @property
    def instance_id(self) -> str:
        return self.settings.instance_id


def build_client(
    settings: ConnectSettings, database_url: str, aws: AwsClients | None = None
) -> ConnectClient:
    """`aws`: clients for a stand-in (tests); else boto3's, from AWS's own configuration."""
    aws = aws or make_clients()
    instance = settings.instance_id
    queues = QueueArns(aws.connect, instance)
    contacts = Contacts(aws.connect, instance)
    return ConnectClient(
        settings=settings,
        aws=aws,
        queues=queues,
        contacts=contacts,
        people=People(aws.connect, instance),
        store=S3Recordings(aws.s3, Locations(database_url, contacts)),
        answers=FlowAnswers(queues),
    )
