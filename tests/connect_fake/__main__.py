"""A local Amazon Connect for trying callguard without an AWS account:

    .venv/bin/python -m tests.connect_fake          # from the project's directory

serves the Connect stand-in (checked against botocore's Connect model, as in the tests) and
S3 (moto's server, versioning on), makes an instance with one queue per department of the
policy plus callguard-fallback, and writes the environment callguard and `callguard
simulate` need to var/connect-standin.env (AWS's own names and callguard's). Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import secrets
import signal
import sys
import threading
from pathlib import Path

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file

from .admin import admin_routes
from .server import FakeConnectServer

ENV_FILE = Path("var/connect-standin.env")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.connect_fake", description=__doc__)
    parser.add_argument("--port", type=int, default=8010, help="Connect's port (8010)")
    parser.add_argument("--s3-port", type=int, default=8011, help="S3's port (8011)")
    parser.add_argument("--policy", default=str(DEFAULT_POLICY_PATH), help="its departments")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    s3_server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.s3_port, verbose=False)
    s3_server.start()
    s3_url = f"http://127.0.0.1:{args.s3_port}"
    connect = FakeConnectServer()
    connect.start(args.port)
    s3 = boto3.session.Session().client(
        "s3",
        endpoint_url=s3_url,
        region_name=connect.region,
        aws_access_key_id=connect.access_key,
        aws_secret_access_key=connect.secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )
    bucket = connect.recording_bucket
    s3.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": connect.region}
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    instance = connect.add_instance()
    connect.add_queue(instance.id, "callguard-fallback")
    for department in load_policy_file(args.policy).departments:
        connect.add_queue(instance.id, department.id)
    connect.app.router.routes.insert(0, admin_routes(connect, instance.id, s3))

    env = {
        "CALLGUARD_PROVIDER": "connect",
        "CALLGUARD_CONNECT_INSTANCE_ID": instance.id,
        "CALLGUARD_CONNECT_TOKEN": secrets.token_hex(24),
        "AWS_ENDPOINT_URL_CONNECT": connect.endpoint_url,
        "AWS_ENDPOINT_URL_S3": s3_url,
        "AWS_ACCESS_KEY_ID": connect.access_key,
        "AWS_SECRET_ACCESS_KEY": connect.secret_key,
        "AWS_REGION": connect.region,
    }
    args.env_file.parent.mkdir(parents=True, exist_ok=True)
    args.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")
    args.env_file.chmod(0o600)
    print(f"Connect stand-in at {connect.endpoint_url}, instance {instance.id}")
    print(f"S3 (moto) at {s3_url}, recordings bucket {bucket} (versioned)")
    print(f"environment written to {args.env_file}: in each terminal, before callguard,")
    print(f"  set -a; . {args.env_file}; set +a")
    sys.stdout.flush()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    connect.stop()
    s3_server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
