"""Bucket setup applied by ``pastiche storage setup``: existence, default encryption, retention rule."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from gateway.settings import ServerSideEncryption

RETENTION_RULE_ID = "pastiche-retention"
DATA_PREFIX = "tenants/"


@dataclass(frozen=True)
class SetupReport:
    """What the setup did, for the CLI to print."""

    created_bucket: bool
    encryption: str
    retention_days: int | None


def encryption_configuration(mode: ServerSideEncryption, kms_key_id: str | None) -> dict[str, Any] | None:
    """``PutBucketEncryption`` document for ``mode``, or ``None`` for no default encryption."""
    if mode is ServerSideEncryption.NONE:
        return None
    default: dict[str, str] = {"SSEAlgorithm": mode.value}
    if mode is ServerSideEncryption.KMS and kms_key_id:
        default["KMSMasterKeyID"] = kms_key_id
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": mode is ServerSideEncryption.KMS}]}


def lifecycle_configuration(retention_days: int) -> dict[str, Any]:
    """``PutBucketLifecycleConfiguration`` document: inputs and outputs expire after ``retention_days``."""
    return {
        "Rules": [{
            "ID": RETENTION_RULE_ID,
            "Filter": {"Prefix": DATA_PREFIX},
            "Status": "Enabled",
            "Expiration": {"Days": retention_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }]
    }


def setup_bucket(client: Any, bucket: str, region: str, mode: ServerSideEncryption, kms_key_id: str | None,
                 retention_days: int | None) -> SetupReport:
    """Create ``bucket`` if missing, then apply default encryption and the retention lifecycle rule."""
    created = False
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        arguments: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": region}
        client.create_bucket(**arguments)
        created = True
    encryption = encryption_configuration(mode, kms_key_id)
    if encryption:
        client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=encryption)
    if retention_days:
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle_configuration(retention_days))
    return SetupReport(created, mode.value, retention_days)
