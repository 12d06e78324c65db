"""A subset of the SageMaker control plane (``sagemaker``, JSON 1.1 protocol) for the endpoints.

``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``; errors are ``{"__type":
"ValidationException", "message": ...}`` with status 400. Served: Create/Describe/Delete/List
Model(s), Create/Describe/Delete/List EndpointConfig(s), Create/Describe/Update/Delete/List
Endpoint(s), UpdateEndpointWeightsAndCapacities, ListTags, AddTags,
Create/Delete/ListMonitoringSchedules and ListContexts. State lives in memory on the emulator's
loop; it is created on start (``<endpoint>-model``, ``<endpoint>-config`` and a lineage context
per endpoint) and lost on stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aiohttp import web

from ._control_lists import ListOperations
from ._deploy import endpoint_from_config, model_reference
from ._paging import PagingError
from ._queue import EndpointQueue
from ._request import ENDPOINT_NAME_PATTERN
from ._spec import ConfigError, ResolvedEndpoint, split_s3_uri

logger = logging.getLogger("aiosagemaker.local")

TARGET_PREFIX = "SageMaker."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
UPDATE_SECONDS = 1.0
"""How long an endpoint stays ``Updating`` after UpdateEndpoint (not scaled)."""
INSTANCE_TYPE = "ml.m5.large"
NAME_MAX = 63

Json = dict[str, Any]


class ControlError(Exception):
    """A JSON-protocol error: ``__type`` ``code``, HTTP ``status``."""

    def __init__(self, message: str, code: str = "ValidationException", status: int = 400) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


def derived_name(endpoint: str, suffix: str) -> str:
    """``<endpoint><suffix>``, the endpoint part cut so the result fits 63 characters."""
    return endpoint[: NAME_MAX - len(suffix)].rstrip("-") + suffix


def _require(body: Json, *keys: str) -> None:
    missing = [key for key in keys if body.get(key) in (None, "", [])]
    if missing:
        raise ControlError(
            "; ".join(
                f"Value null at '{k[0].lower()}{k[1:]}' failed to satisfy constraint: "
                "Member must not be null"
                for k in missing
            )
        )


class ControlPlane(ListOperations):
    """The emulator's models, endpoint configs, endpoints, tags, schedules and contexts.

    Args:
        queues: The runtime's queues by endpoint name (shared with the runtime server: an
            endpoint deleted here is removed from it, so InvokeEndpointAsync no longer finds it).
        ensure_resources: Called with an AsyncInferenceConfig before an update takes effect, to
            create its buckets and topics.
        create_endpoint: Called once a ``CreateEndpoint`` has resolved its endpoint; it starts
            the endpoint's queue (and adds it to ``queues``). Without it CreateEndpoint fails.
        check_model: Raises :class:`ConfigError` for a model reference ``CreateModel`` may not
            name (see ``_trust.ModelPolicy``); without it any reference is accepted.
    """

    def __init__(
        self,
        queues: MutableMapping[str, EndpointQueue],
        *,
        region: str,
        account_id: str,
        ensure_resources: Callable[[Json], Awaitable[None]] | None = None,
        create_endpoint: Callable[[ResolvedEndpoint], Awaitable[None]] | None = None,
        check_model: Callable[[str], None] | None = None,
    ) -> None:
        self._queues = queues
        self._region, self._account = region, account_id
        self._ensure = ensure_resources
        self._create = create_endpoint
        self._check_model = check_model
        self.models: dict[str, Json] = {}
        self.configs: dict[str, Json] = {}
        self.endpoints: dict[str, Json] = {}
        self.schedules: dict[str, Json] = {}
        self.contexts: dict[str, Json] = {}
        self.tags: dict[str, list[Json]] = {}
        self.retired: list[EndpointQueue] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def arn(self, kind: str, name: str) -> str:
        """The ARN of a SageMaker resource (names are lower-cased, as SageMaker does)."""
        return f"arn:aws:sagemaker:{self._region}:{self._account}:{kind}/{name.lower()}"

    # -- set-up ---------------------------------------------------------------------------

    def register(self, endpoint: ResolvedEndpoint, image: str) -> None:
        """Create the model, endpoint config, endpoint and lineage context of ``endpoint``."""
        now = time.time()
        model, config = (
            derived_name(endpoint.name, "-model"),
            derived_name(endpoint.name, "-config"),
        )
        self.models[model] = {
            "ModelName": model,
            "ModelArn": self.arn("model", model),
            "PrimaryContainer": {"Image": image, "Mode": "SingleModel"},
            "ExecutionRoleArn": f"arn:aws:iam::{self._account}:role/aiosagemaker-local",
            "CreationTime": now,
        }
        variant = {
            "VariantName": "AllTraffic",
            "ModelName": model,
            "InitialInstanceCount": endpoint.instance_count,
            "InstanceType": INSTANCE_TYPE,
            "InitialVariantWeight": 1.0,
        }
        self._put_config(
            {
                "EndpointConfigName": config,
                "ProductionVariants": [variant],
                "AsyncInferenceConfig": endpoint.async_inference_config(),
            }
        )
        arn = self.arn("endpoint", endpoint.name)
        self.endpoints[endpoint.name] = {
            "EndpointName": endpoint.name,
            "EndpointArn": arn,
            "EndpointConfigName": config,
            "EndpointStatus": "InService",
            "CreationTime": now,
            "LastModifiedTime": now,
            "_applied": dict(self.configs[config]),
        }
        context = derived_name(endpoint.name, f"-{int(now)}-aws-endpoint")
        self.contexts[context] = {
            "ContextName": context,
            "ContextArn": self.arn("context", context),
            "Source": {"SourceUri": arn, "SourceType": "ARN"},
            "ContextType": "Endpoint",
            "CreationTime": now,
            "LastModifiedTime": now,
        }

    def _put_config(self, body: Json) -> Json:
        name = body["EndpointConfigName"]
        config = {k: v for k, v in body.items() if k != "Tags"}
        config["EndpointConfigArn"] = self.arn("endpoint-config", name)
        config["CreationTime"] = time.time()
        self.configs[name] = config
        self.tags[config["EndpointConfigArn"]] = list(body.get("Tags") or [])
        return config

    # -- HTTP -----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        """Answer one ``POST /`` request."""
        target = request.headers.get("X-Amz-Target", "")
        try:
            operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
            method = getattr(self, f"op_{operation}", None) if operation.isalnum() else None
            if method is None:
                raise ControlError(
                    f"Operation {target or '(no X-Amz-Target)'} is not supported by the emulator.",
                    "UnknownOperationException",
                )
            try:
                body = json.loads(await request.read() or b"{}")
            except ValueError:
                raise ControlError(
                    "The request body is not valid JSON.", "SerializationException"
                ) from None
            if not isinstance(body, dict):
                raise ControlError(
                    "The request body must be a JSON object.", "SerializationException"
                )
            try:
                result: Json = method(body)
            except PagingError as error:
                raise ControlError(str(error)) from None
        except ControlError as error:
            logger.info("control %s -> %s: %s", target, error.code, error.message)
            return self._response({"__type": error.code, "message": error.message}, error.status)
        return self._response(result, 200)

    @staticmethod
    def _response(data: Json, status: int) -> web.Response:
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if status != 200:
            headers["x-amzn-ErrorType"] = str(data["__type"])
        return web.Response(
            status=status,
            body=json.dumps(data).encode(),
            content_type=JSON_CONTENT_TYPE,
            headers=headers,
        )

    # -- lookups --------------------------------------------------------------------------

    def _endpoint(self, name: str) -> Json:
        if name not in self.endpoints:
            raise ControlError(f'Could not find endpoint "{self.arn("endpoint", name)}".')
        return self.endpoints[name]

    def _config(self, name: str) -> Json:
        if name not in self.configs:
            arn = self.arn("endpoint-config", name)
            raise ControlError(f'Could not find endpoint configuration "{arn}".')
        return self.configs[name]

    def _model(self, name: str) -> Json:
        if name not in self.models:
            raise ControlError(f'Could not find model "{self.arn("model", name)}".')
        return self.models[name]

    # -- models and endpoint configs ------------------------------------------------------

    def op_CreateModel(self, body: Json) -> Json:
        _require(body, "ModelName")
        name = body["ModelName"]
        arn = self.arn("model", name)
        if name in self.models:
            raise ControlError(f'Cannot create already existing model "{arn}".')
        if not body.get("PrimaryContainer") and not body.get("Containers"):
            raise ControlError("Either PrimaryContainer or Containers must be specified.")
        if self._check_model is not None:
            try:
                self._check_model(model_reference(body))
            except ConfigError as error:
                raise ControlError(f"CreateModel: {error}") from None
        model = {k: v for k, v in body.items() if k != "Tags"}
        model.update(ModelArn=arn, CreationTime=time.time())
        self.models[name] = model
        self.tags[arn] = list(body.get("Tags") or [])
        return {"ModelArn": arn}

    def op_DescribeModel(self, body: Json) -> Json:
        _require(body, "ModelName")
        return dict(self._model(body["ModelName"]))

    def op_DeleteModel(self, body: Json) -> Json:
        _require(body, "ModelName")
        model = self._model(body["ModelName"])
        del self.models[model["ModelName"]]
        self.tags.pop(model["ModelArn"], None)
        return {}

    def op_DescribeEndpointConfig(self, body: Json) -> Json:
        _require(body, "EndpointConfigName")
        return dict(self._config(body["EndpointConfigName"]))

    def op_CreateEndpointConfig(self, body: Json) -> Json:
        _require(body, "EndpointConfigName", "ProductionVariants")
        name = body["EndpointConfigName"]
        if name in self.configs:
            arn = self.arn("endpoint-config", name)
            raise ControlError(f'Cannot create already existing endpoint configuration "{arn}".')
        for variant in body["ProductionVariants"]:
            if variant.get("ModelName") not in self.models:
                raise ControlError(f'Could not find model "{variant.get("ModelName")}".')
        output = (body.get("AsyncInferenceConfig") or {}).get("OutputConfig") or {}
        for key in ("S3OutputPath", "S3FailurePath"):
            if output.get(key) is not None:
                try:
                    split_s3_uri(output[key])
                except ConfigError as error:
                    raise ControlError(f"{key}: {error}") from None
        return {"EndpointConfigArn": self._put_config(body)["EndpointConfigArn"]}

    def op_DeleteEndpointConfig(self, body: Json) -> Json:
        _require(body, "EndpointConfigName")
        config = self._config(body["EndpointConfigName"])
        del self.configs[config["EndpointConfigName"]]
        self.tags.pop(config["EndpointConfigArn"], None)
        return {}

    # -- endpoints ------------------------------------------------------------------------

    def op_CreateEndpoint(self, body: Json) -> Json:
        _require(body, "EndpointName", "EndpointConfigName")
        name = body["EndpointName"]
        if not ENDPOINT_NAME_PATTERN.fullmatch(name) or len(name) > NAME_MAX:
            raise ControlError(
                f"1 validation error detected: Value '{name}' at 'endpointName' failed to "
                "satisfy constraint: Member must satisfy regular expression pattern: "
                "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
            )
        arn = self.arn("endpoint", name)
        if name in self.endpoints:
            raise ControlError(f'Cannot create already existing endpoint "{arn}".')
        config = self._config(body["EndpointConfigName"])
        if "AsyncInferenceConfig" not in config:
            raise ControlError(
                "The endpoint configuration has no AsyncInferenceConfig; the emulator serves "
                "async endpoints only."
            )
        variants = config.get("ProductionVariants") or []
        model = self._model(variants[0].get("ModelName", "")) if variants else {}
        try:
            resolved = endpoint_from_config(
                name,
                config,
                model_reference(model),
                region=self._region,
                account_id=self._account,
            )
        except ConfigError as error:
            raise ControlError(str(error)) from None
        now = time.time()
        endpoint: Json = {
            "EndpointName": name,
            "EndpointArn": arn,
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": now,
            "LastModifiedTime": now,
            "_applied": dict(config),
        }
        self.endpoints[name] = endpoint
        self.tags[arn] = list(body.get("Tags") or [])
        task = asyncio.ensure_future(self._finish_create(endpoint, resolved))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"EndpointArn": arn}

    async def _finish_create(self, endpoint: Json, resolved: ResolvedEndpoint) -> None:
        try:
            await asyncio.sleep(UPDATE_SECONDS)
            if self._create is None:
                raise RuntimeError("this emulator cannot create endpoints")
            if self.endpoints.get(resolved.name) is not endpoint:
                return  # deleted while it was being created
            await self._create(resolved)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.warning("endpoint=%s creation failed: %s", resolved.name, error)
            endpoint.update(EndpointStatus="Failed", FailureReason=str(error))
        else:
            endpoint.update(EndpointStatus="InService", LastModifiedTime=time.time())
            logger.info("endpoint=%s created (model %s)", resolved.name, resolved.model)

    def op_DescribeEndpoint(self, body: Json) -> Json:
        _require(body, "EndpointName")
        state = self._endpoint(body["EndpointName"])
        endpoint = {k: v for k, v in state.items() if not k.startswith("_")}
        config: Json = state["_applied"]  # what it serves: kept when the config is deleted
        queue = self._queues.get(state["EndpointName"])
        running = None if queue is None else queue.endpoint.instance_count
        endpoint["ProductionVariants"] = [
            {
                "VariantName": v.get("VariantName", "AllTraffic"),
                # the first variant is what the queue serves: its instances as now scaled
                "CurrentInstanceCount": count,
                "DesiredInstanceCount": count,
                "CurrentWeight": v.get("InitialVariantWeight", 1.0),
                "DesiredWeight": v.get("InitialVariantWeight", 1.0),
            }
            for index, v in enumerate(config.get("ProductionVariants", []))
            for count in [
                running if index == 0 and running is not None else v.get("InitialInstanceCount", 1)
            ]
        ]
        capture = config.get("DataCaptureConfig")
        if capture:
            summary = {
                "EnableCapture": bool(capture.get("EnableCapture", True)),
                "CaptureStatus": "Started" if capture.get("EnableCapture", True) else "Stopped",
                "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 0),
                "DestinationS3Uri": capture.get("DestinationS3Uri", ""),
            }
            if capture.get("KmsKeyId"):
                summary["KmsKeyId"] = capture["KmsKeyId"]
            endpoint["DataCaptureConfig"] = summary
        if config.get("AsyncInferenceConfig"):
            endpoint["AsyncInferenceConfig"] = config["AsyncInferenceConfig"]
        return endpoint

    def op_UpdateEndpoint(self, body: Json) -> Json:
        _require(body, "EndpointName", "EndpointConfigName")
        endpoint = self._endpoint(body["EndpointName"])
        config = self._config(body["EndpointConfigName"])
        if endpoint["EndpointStatus"] != "InService":
            raise ControlError(f'Cannot update in-progress endpoint "{endpoint["EndpointArn"]}".')
        if "AsyncInferenceConfig" not in config:
            raise ControlError(
                "The endpoint configuration has no AsyncInferenceConfig; the emulator serves "
                "async endpoints only."
            )
        # Describe shows the new config name at once, and the old settings until InService.
        endpoint.update(
            EndpointStatus="Updating",
            _previous=endpoint["EndpointConfigName"],
            EndpointConfigName=config["EndpointConfigName"],
            LastModifiedTime=time.time(),
        )
        task = asyncio.ensure_future(self._finish_update(endpoint, dict(config)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return {"EndpointArn": endpoint["EndpointArn"]}

    async def _finish_update(self, endpoint: Json, config: Json) -> None:
        name = endpoint["EndpointName"]
        try:
            await asyncio.sleep(UPDATE_SECONDS)
            async_config = config["AsyncInferenceConfig"]
            if self._ensure is not None:
                await self._ensure(async_config)
            queue = self._queues.get(name)
            if queue is not None:
                queue.endpoint = _apply(queue.endpoint, async_config)
                variants = config.get("ProductionVariants") or [{}]
                count = variants[0].get("InitialInstanceCount")
                if isinstance(count, int) and not isinstance(count, bool) and count >= 0:
                    queue.scale(count)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # roll back, as SageMaker does
            logger.warning("endpoint=%s update failed: %s", name, error)
            endpoint.update(
                EndpointStatus="InService",
                EndpointConfigName=endpoint["_previous"],
                FailureReason=f"Update failed and was rolled back: {error}",
            )
        else:
            endpoint.pop("FailureReason", None)
            endpoint.update(EndpointStatus="InService", LastModifiedTime=time.time())
            endpoint["_applied"] = config
            logger.info("endpoint=%s now uses config %s", name, config["EndpointConfigName"])
        endpoint.pop("_previous", None)

    def op_UpdateEndpointWeightsAndCapacities(self, body: Json) -> Json:
        """Scale the endpoint's (first) variant at once: ``DesiredInstanceCount``, 0 allowed."""
        _require(body, "EndpointName", "DesiredWeightsAndCapacities")
        endpoint = self._endpoint(body["EndpointName"])
        queue = self._queues.get(endpoint["EndpointName"])
        variants = endpoint["_applied"].get("ProductionVariants") or [{}]
        first = variants[0].get("VariantName", "AllTraffic")
        for desired in body["DesiredWeightsAndCapacities"]:
            if desired.get("VariantName") != first:
                raise ControlError(
                    f'The variant "{desired.get("VariantName")}" does not exist in endpoint '
                    f'"{endpoint["EndpointArn"]}" (the emulator scales its first variant).'
                )
            count = desired.get("DesiredInstanceCount")
            if count is None:
                continue
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ControlError(f"DesiredInstanceCount must be an integer >= 0, got {count!r}")
            if queue is not None:
                queue.scale(count)
                logger.info("endpoint=%s scaled to %d instances", endpoint["EndpointName"], count)
        return {"EndpointArn": endpoint["EndpointArn"]}

    def op_DeleteEndpoint(self, body: Json) -> Json:
        _require(body, "EndpointName")
        endpoint = self._endpoint(body["EndpointName"])
        name = endpoint["EndpointName"]
        del self.endpoints[name]
        self.tags.pop(endpoint["EndpointArn"], None)
        queue = self._queues.pop(name, None)
        if queue is not None:  # accepted work finishes; stopped with the emulator
            self.retired.append(queue)
        logger.info("endpoint=%s deleted", name)
        return {}

    async def stop(self) -> None:
        """Cancel pending updates and stop the queues of deleted endpoints."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for queue in self.retired:
            await queue.stop()

    # -- tags, monitoring schedules, lineage contexts ---------------------------------------

    def _tagged(self, arn: str) -> list[Json]:
        if arn not in self.tags and not any(
            arn == item.get(key)
            for items, key in (
                (self.models.values(), "ModelArn"),
                (self.endpoints.values(), "EndpointArn"),
            )
            for item in items
        ):
            raise ControlError(f'Could not find resource "{arn}".')
        return self.tags.setdefault(arn, [])

    def op_ListTags(self, body: Json) -> Json:
        _require(body, "ResourceArn")
        return {"Tags": list(self._tagged(body["ResourceArn"]))}

    def op_AddTags(self, body: Json) -> Json:
        _require(body, "ResourceArn", "Tags")
        tags = self._tagged(body["ResourceArn"])
        for tag in body["Tags"]:
            tags[:] = [t for t in tags if t.get("Key") != tag.get("Key")] + [tag]
        return {"Tags": list(tags)}

    def op_CreateMonitoringSchedule(self, body: Json) -> Json:
        _require(body, "MonitoringScheduleName", "MonitoringScheduleConfig")
        name = body["MonitoringScheduleName"]
        arn = self.arn("monitoring-schedule", name)
        if name in self.schedules:
            raise ControlError(f'Monitoring schedule "{arn}" already exists.', "ResourceInUse")
        config = body["MonitoringScheduleConfig"]
        inputs = (config.get("MonitoringJobDefinition") or {}).get("MonitoringInputs") or []
        endpoint = next(
            (i["EndpointInput"]["EndpointName"] for i in inputs if "EndpointInput" in i), None
        )
        now = time.time()
        summary: Json = {
            "MonitoringScheduleName": name,
            "MonitoringScheduleArn": arn,
            "CreationTime": now,
            "LastModifiedTime": now,
            "MonitoringScheduleStatus": "Scheduled",
            "MonitoringType": config.get("MonitoringType", "DataQuality"),
        }
        if endpoint is not None:
            summary["EndpointName"] = endpoint
        if config.get("MonitoringJobDefinitionName"):
            summary["MonitoringJobDefinitionName"] = config["MonitoringJobDefinitionName"]
        self.schedules[name] = summary
        self.tags[arn] = list(body.get("Tags") or [])
        return {"MonitoringScheduleArn": arn}

    def op_DeleteMonitoringSchedule(self, body: Json) -> Json:
        _require(body, "MonitoringScheduleName")
        if self.schedules.pop(body["MonitoringScheduleName"], None) is None:
            arn = self.arn("monitoring-schedule", body["MonitoringScheduleName"])
            raise ControlError(f'Could not find schedule "{arn}".', "ResourceNotFound")
        return {}

    def op_ListMonitoringSchedules(self, body: Json) -> Json:
        found = [
            dict(s)
            for s in self.schedules.values()
            if body.get("EndpointName") in (None, s.get("EndpointName"))
            and body.get("NameContains", "") in s["MonitoringScheduleName"]
        ]
        return {"MonitoringScheduleSummaries": found}

    def op_ListContexts(self, body: Json) -> Json:
        found = [
            dict(c)
            for c in self.contexts.values()
            if body.get("SourceUri") in (None, c["Source"]["SourceUri"])
            and body.get("ContextType") in (None, c["ContextType"])
        ]
        return {"ContextSummaries": found}


def _apply(endpoint: ResolvedEndpoint, config: Json) -> ResolvedEndpoint:
    """``endpoint`` with the output paths and notification topics of ``config``.

    ``MaxConcurrentInvocationsPerInstance`` stays as started (the caller scales the
    instance count).
    """
    output = config.get("OutputConfig") or {}
    notification = output.get("NotificationConfig") or {}
    failure = output.get("S3FailurePath")
    return dataclasses.replace(
        endpoint,
        output_path=output.get("S3OutputPath", endpoint.output_path).rstrip("/"),
        failure_path=failure.rstrip("/") if failure else None,
        success_topic_arn=notification.get("SuccessTopic"),
        error_topic_arn=notification.get("ErrorTopic"),
        include_inference_response_in=tuple(notification.get("IncludeInferenceResponseIn", ())),
    )
