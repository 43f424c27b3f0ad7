"""``pastiche storage setup`` and ``pastiche keys create``: the gateway's operator commands."""

from __future__ import annotations

import typer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from rich.console import Console

from gateway.auth import key_entry, new_key, parse_entries
from gateway.bucket_setup import setup_bucket
from gateway.settings import GatewaySettings, ServerSideEncryption
from pastiche.s3 import s3_client

storage_app = typer.Typer(help="S3 bucket administration for the gateway.", no_args_is_help=True)
keys_app = typer.Typer(help="Gateway API keys.", no_args_is_help=True)
console = Console()


@storage_app.command("setup")
def storage_setup(
    bucket: str | None = typer.Option(None, help="Bucket (default: PASTICHE_S3_BUCKET)."),
    sse: ServerSideEncryption | None = typer.Option(None, help="Default encryption (default: PASTICHE_S3_SSE)."),
    kms_key_id: str | None = typer.Option(None, help="KMS key for aws:kms (default: PASTICHE_S3_SSE_KMS_KEY_ID)."),
    retention_days: int | None = typer.Option(
        None, min=1, help="Expire stored images after N days (default: PASTICHE_S3_RETENTION_DAYS)."
    ),
) -> None:
    """Create the bucket if needed and apply default encryption and the retention lifecycle rule."""
    try:
        settings = GatewaySettings()
    except ValidationError as error:
        console.print(f"[red]invalid PASTICHE_* settings:[/] {error}")
        raise typer.Exit(2) from error
    bucket = bucket or settings.s3_bucket
    client = s3_client(settings.s3_endpoint_url or None, settings.s3_region,
                       aws_access_key_id=settings.s3_access_key_id, aws_secret_access_key=settings.s3_secret_access_key)
    try:
        report = setup_bucket(client, bucket, settings.s3_region, sse or settings.s3_sse,
                              kms_key_id or settings.s3_sse_kms_key_id, retention_days or settings.s3_retention_days)
    except (BotoCoreError, ClientError) as error:
        console.print(f"[red]S3 setup of bucket {bucket!r} failed:[/] {error}")
        raise typer.Exit(1) from error
    console.print(f"[green]✓[/] bucket {bucket!r} {'created' if report.created_bucket else 'exists'}")
    console.print(f"  default encryption: {report.encryption}")
    retention = f"objects under tenants/ expire after {report.retention_days} days" if report.retention_days else "none"
    console.print(f"  retention: {retention}")


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Argument(..., help="Tenant the key belongs to."),
    requests_per_minute: int | None = typer.Option(None, min=1, help="Per-key rate limit (default: gateway-wide)."),
) -> None:
    """Print a new API key and the hashed entry to add to PASTICHE_API_KEYS (the key itself is not stored)."""
    key = new_key()
    try:
        entry = key_entry(tenant, key, requests_per_minute)
        parse_entries([entry])
    except ValueError as error:
        console.print(f"[red]{error}[/]")
        raise typer.Exit(2) from error
    console.print(f"API key (give it to the client; it is shown once): {key}", soft_wrap=True)
    console.print(f"PASTICHE_API_KEYS entry: {entry}", soft_wrap=True)
