"""A lean SageMaker runtime client: InvokeEndpointAsync on aiohttp, the rest on botocore.

The request is built from botocore's service model (the URI label, the headers by their
``locationName``, the inline ``Body`` as the payload, where the model has it), checked by
botocore's own parameter validator, signed with botocore's SigV4 and sent once: no retries,
as the aiobotocore runtime client the library makes never retries either.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.utils import percent_encode
from botocore.validate import ParamValidator

from ._errors import client_error, response_metadata
from ._http import Session, send
from ._signing import Endpoint, Signer, resolve_endpoint

__all__ = ["LeanRuntime"]

_OPERATION = "InvokeEndpointAsync"


class LeanRuntime:
    """The aiobotocore SageMaker runtime client ``client`` with InvokeEndpointAsync lean.

    Args:
        client: The open aiobotocore ``sagemaker-runtime`` client (``meta``, other calls).
        session: The aiohttp session of the lean requests (closed by whoever opened it).
    """

    def __init__(self, client: Any, session: Session) -> None:
        self._lean_client = client
        self._lean_session = session
        self._lean_signer = Signer(client)
        model = client.meta.service_model.operation_model(_OPERATION)
        self._lean_input = model.input_shape
        self._lean_path = str(model.http["requestUri"])
        self._lean_method = str(model.http["method"])
        self._lean_payload = self._lean_input.serialization.get("payload")
        self._lean_headers = {
            name: str(shape.serialization["name"])
            for name, shape in self._lean_input.members.items()
            if shape.serialization.get("location") == "header"
        }
        self._lean_output_headers = {
            name: str(shape.serialization["name"])
            for name, shape in model.output_shape.members.items()
            if shape.serialization.get("location") == "header"
        }
        self._lean_validator = ParamValidator()
        self._lean_endpoint: Endpoint | None = None
        self._lean_resolved = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lean_client, name)

    async def invoke_endpoint_async(self, **arguments: Any) -> dict[str, Any]:
        """InvokeEndpointAsync, answered as botocore answers it (or by botocore itself)."""
        if not self._lean_resolved:
            self._lean_endpoint = await resolve_endpoint(
                self._lean_client, _OPERATION, {"EndpointName": "endpoint"}
            )
            self._lean_resolved = True
        request = self._lean_build(arguments) if self._lean_endpoint is not None else None
        if request is None or self._lean_endpoint is None:
            return await self._lean_client.invoke_endpoint_async(**arguments)  # type: ignore[no-any-return]
        url, headers, body = request
        signed = await self._lean_signer.sign(
            self._lean_endpoint, self._lean_method, url, headers, body
        )
        response, data = await send(
            self._lean_session, self._lean_method, url, signed, body or None
        )
        raw = dict(response.headers)
        if response.status >= 300:
            raise client_error(self._lean_client, _OPERATION, response.status, raw, data or b"")
        parsed: dict[str, Any] = json.loads(data) if data else {}
        result = {"InferenceId": parsed["InferenceId"]} if "InferenceId" in parsed else {}
        for name, header in self._lean_output_headers.items():
            if header in response.headers:
                result[name] = response.headers[header]
        result["ResponseMetadata"] = response_metadata(response.status, raw)
        return result

    def _lean_build(self, arguments: dict[str, Any]) -> tuple[str, dict[str, str], bytes] | None:
        """(url, headers, body) of the request; None to leave it to botocore."""
        if self._lean_validator.validate(arguments, self._lean_input).has_errors():
            return None  # botocore raises its ParamValidationError
        assert self._lean_endpoint is not None
        headers: dict[str, str] = {}
        body = b""
        path = self._lean_path
        for name, value in arguments.items():
            header = self._lean_headers.get(name)
            if header is not None:
                if not isinstance(value, (str, int)) or isinstance(value, bool):
                    return None
                headers[header] = str(value)
            elif name == self._lean_payload and isinstance(value, bytes):
                body = value
            elif name == "EndpointName":
                path = path.replace("{EndpointName}", percent_encode(value, safe=""))
            else:
                return None
        if "{" in path:
            return None
        return f"{self._lean_endpoint.url}{path}", headers, body
