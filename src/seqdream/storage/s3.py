"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2 ...), for multi-machine deployments.

Credentials come from the usual AWS sources (environment, profile, instance role).
"""

from __future__ import annotations

from typing import Any

from seqdream.storage.base import BlobNotFound, StorageError


class S3BlobStore:
    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=60),
        )

    def _call(self, method: str, key: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, Key=self.prefix + key, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise BlobNotFound(key) from exc
            raise StorageError(f"S3 {method} of {key!r} failed: {code or exc}", code or "refused") from exc
        except BotoCoreError as exc:
            raise StorageError(f"S3 {method} of {key!r} failed: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        self._call("put_object", key, Body=data)

    def get(self, key: str) -> bytes:
        return self._call("get_object", key)["Body"].read()

    def delete(self, key: str) -> None:
        self._call("delete_object", key)

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", key)
        except BlobNotFound:
            return False
        return True
