"""The emulator's own aiobotocore clients for S3 (inputs, results) and SNS (notifications).

Only calls that exist in both aiobotocore 2.25 (botocore 1.40) and 3.x are used.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from ._delivery import DirectDelivery
from ._spec import split_s3_uri

logger = logging.getLogger("aiosagemaker.local")


class InputNotFound(Exception):
    """The InputLocation object (or its bucket) does not exist or cannot be read."""


class AwsClients:
    """S3 and (optionally) SNS clients, opened with :meth:`open`, closed with :meth:`close`.

    With ``direct``, notifications to topics whose subscribers are all SQS queues in the
    in-process moto are delivered by the emulator itself (see ``_delivery``).
    """

    def __init__(
        self,
        *,
        region: str,
        s3_url: str,
        sns_url: str | None,
        credentials: tuple[str, str] | None,
        max_connections: int,
        direct: DirectDelivery | None = None,
    ) -> None:
        self.region = region
        self._s3_url = s3_url
        self._sns_url = sns_url
        self._credentials = credentials
        self._config = AioConfig(
            max_pool_connections=max_connections,
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"},
        )
        self._direct = direct
        self._stack = AsyncExitStack()
        self.s3: Any = None
        self.sns: Any = None

    async def open(self) -> None:
        """Create the clients."""
        session = get_session()
        kwargs: dict[str, Any] = {"region_name": self.region, "config": self._config}
        if self._credentials is not None:
            kwargs["aws_access_key_id"], kwargs["aws_secret_access_key"] = self._credentials
        self.s3 = await self._stack.enter_async_context(
            session.create_client("s3", endpoint_url=self._s3_url, **kwargs)
        )
        if self._sns_url is not None:
            self.sns = await self._stack.enter_async_context(
                session.create_client("sns", endpoint_url=self._sns_url, **kwargs)
            )

    async def close(self) -> None:
        """Close the clients."""
        await self._stack.aclose()

    async def ensure_bucket(self, bucket: str) -> None:
        """Create ``bucket`` unless it exists."""
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            await self.s3.create_bucket(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    async def ensure_topic(self, arn: str) -> None:
        """Create the topic named by ``arn`` (idempotent)."""
        if self.sns is None:
            raise RuntimeError(f"no SNS endpoint configured for topic {arn}")
        name = arn.rsplit(":", 1)[-1]
        created = await self.sns.create_topic(Name=name)
        if created["TopicArn"] != arn:
            logger.warning("topic %s was created as %s", arn, created["TopicArn"])

    async def read_input(self, uri: str) -> bytes:
        """Read the InputLocation object.

        Raises:
            InputNotFound: The bucket or key is missing, or access is denied.
        """
        bucket, key = split_s3_uri(uri)
        try:
            response = await self.s3.get_object(Bucket=bucket, Key=key)
            async with response["Body"] as stream:
                data: bytes = await stream.read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise InputNotFound(f"{code}: {exc}") from exc
        return data

    async def put_object(self, uri: str, body: bytes, content_type: str) -> None:
        """Write a result or failure object."""
        bucket, key = split_s3_uri(uri)
        await self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    async def publish(self, topic_arn: str, message: str) -> None:
        """Publish a notification: straight into moto's SQS queues where possible, else SNS."""
        if self._direct is not None and self._direct.deliver(topic_arn, message):
            return
        if self.sns is None:
            raise RuntimeError(f"no SNS endpoint configured for topic {topic_arn}")
        await self.sns.publish(TopicArn=topic_arn, Message=message)
