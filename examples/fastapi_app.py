"""A FastAPI service in front of a SageMaker async endpoint.

One :class:`~aiosagemaker.AsyncPredictor` is opened in the app's lifespan and shared by every
request (one connection pool, one waiting engine for all pending results). Routes:

- ``POST /predict``: submit the JSON body and wait for the result (``?timeout=`` seconds).
- ``POST /inferences``: submit and return at once, with a signed continuation token;
  ``GET /inferences/{token}`` then tells whether the result is there (``?wait=`` seconds of
  long polling). Tokens are signed with HMAC-SHA256, so a client cannot edit one to make the
  service read another S3 object; an altered or foreign token is answered 400.
- ``GET /health``: answers without touching AWS.

A model failure is answered 502 and a wait that runs out 504.

Configuration, from the environment:

- ``SAGEMAKER_ENDPOINT``: the async endpoint (default ``demo``);
- ``AIOSAGEMAKER_TOKEN_KEY``: the token signing key, required (at least 16 bytes; for example
  ``python -c "import secrets; print(secrets.token_urlsafe(32))"``). Every instance of the
  service needs the same key;
- AWS credentials, region and ``AWS_ENDPOINT_URL_*`` as for any boto client (the printed
  ``export`` lines of ``aiosagemaker local serve`` point it at the local emulator).

Install ``pip install 'aiosagemaker[fastapi]'``; run ``uvicorn fastapi_app:app --app-dir examples``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse

from aiosagemaker import (
    AsyncInferenceModelError,
    AsyncPredictor,
    InvalidTokenError,
    JSONDeserializer,
    JSONSerializer,
    ObjectNotExistedError,
    PollingTimeoutError,
    WaiterConfig,
)

ENDPOINT_ENV = "SAGEMAKER_ENDPOINT"
TOKEN_KEY_ENV = "AIOSAGEMAKER_TOKEN_KEY"
MAX_WAIT_SECONDS = 300.0
MAX_LONG_POLL_SECONDS = 20.0


@dataclass(frozen=True)
class Settings:
    endpoint: str
    token_key: str

    @classmethod
    def from_env(cls) -> Settings:
        key = os.environ.get(TOKEN_KEY_ENV, "")
        if len(key.encode()) < 16:
            raise RuntimeError(
                f"set {TOKEN_KEY_ENV} to a secret of at least 16 bytes (the same on every "
                'instance), e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"'
            )
        return cls(endpoint=os.environ.get(ENDPOINT_ENV, "demo"), token_key=key)


def waiting(seconds: float) -> WaiterConfig:
    """Check soon after submission, then less often; give up after ``seconds``."""
    return WaiterConfig(max_attempts=None, delay=0.2, backoff=1.5, max_delay=2, timeout=seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = Settings.from_env()
    async with AsyncPredictor(
        settings.endpoint, serializer=JSONSerializer(), deserializer=JSONDeserializer()
    ) as predictor:
        app.state.settings = settings
        app.state.predictor = predictor
        yield


app = FastAPI(title="aiosagemaker example", lifespan=lifespan)


def get_predictor(request: Request) -> AsyncPredictor:
    predictor: AsyncPredictor = request.app.state.predictor
    return predictor


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


PredictorDep = Annotated[AsyncPredictor, Depends(get_predictor)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@app.exception_handler(AsyncInferenceModelError)
async def model_failed(request: Request, error: AsyncInferenceModelError) -> JSONResponse:
    return JSONResponse(
        {"error": "model_error", "message": error.message, "inference_id": error.inference_id},
        status_code=status.HTTP_502_BAD_GATEWAY,
    )


@app.exception_handler(PollingTimeoutError)
async def timed_out(request: Request, error: PollingTimeoutError) -> JSONResponse:
    # str(error) names the S3 location: keep it in the logs, not in the answer.
    return JSONResponse(
        {
            "error": "timeout",
            "message": f"no result after {error.seconds:.1f} s",
            "inference_id": error.inference_id,
        },
        status_code=status.HTTP_504_GATEWAY_TIMEOUT,
    )


@app.exception_handler(InvalidTokenError)
async def bad_token(request: Request, error: InvalidTokenError) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_token", "message": error.message},
        status_code=status.HTTP_400_BAD_REQUEST,
    )


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
async def predict(
    predictor: PredictorDep,
    payload: Annotated[Any, Body()],
    timeout: Annotated[float, Query(gt=0, le=MAX_WAIT_SECONDS)] = 60.0,
) -> dict[str, Any]:
    """Submit and wait: the result, 502 if the model failed, 504 after ``timeout`` seconds."""
    response = await predictor.predict_async(payload)
    result = await response.get_result(waiting(timeout))
    return {"inference_id": response.inference_id, "result": result}


@app.post("/inferences", status_code=status.HTTP_202_ACCEPTED)
async def submit(
    predictor: PredictorDep,
    settings: SettingsDep,
    payload: Annotated[Any, Body()],
    http: Response,
) -> dict[str, Any]:
    """Submit without waiting; poll ``GET /inferences/{token}``."""
    response = await predictor.predict_async(payload)
    token = response.continuation_token(key=settings.token_key)
    http.headers["Location"] = f"/inferences/{token}"
    return {"inference_id": response.inference_id, "token": token}


@app.get("/inferences/{token}")
async def poll(
    predictor: PredictorDep,
    settings: SettingsDep,
    token: str,
    http: Response,
    wait: Annotated[float, Query(ge=0, le=MAX_LONG_POLL_SECONDS)] = 0.0,
) -> dict[str, Any]:
    """200 with the result, 202 while in progress, 502 if the model failed, 400 bad token."""
    response = predictor.response_from_token(token, key=settings.token_key)
    try:
        # One check (output and failure at once), or a long poll of ``wait`` seconds.
        result = await response.get_result(waiting(wait) if wait > 0 else None)
    except (ObjectNotExistedError, PollingTimeoutError):
        http.status_code = status.HTTP_202_ACCEPTED
        return {"status": "InProgress", "inference_id": response.inference_id}
    return {"status": "Completed", "inference_id": response.inference_id, "result": result}
