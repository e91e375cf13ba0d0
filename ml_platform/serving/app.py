"""The HTTP service (Starlette on uvicorn): POST /v1/models/{name}/predict, GET /health, GET /openapi.json.

A request's problem is a 4xx whose body names it; anything else is a 500 whose body holds only the request id
(the traceback goes to the server's standard error, with that id). Parsing, reading and scoring run in a thread
pool of WORKER_THREADS threads, so the event loop only accepts, decodes and sends: a pool far larger than the cores
(Starlette's default is 40) only makes threads fight for the interpreter lock and the cores.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
import uuid
from functools import partial
from typing import Callable

import anyio
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ml_platform.names import REQUEST_ID_COLUMN
from ml_platform.serving.errors import BadRequestError, ServingError
from ml_platform.serving.log import ServedLog
from ml_platform.serving.openapi import openapi_document
from ml_platform.serving.predict import score_request
from ml_platform.serving.requests import parse_request
from ml_platform.serving.state import ServedState, data_folder
from ml_platform.specs.errors import did_you_mean
from ml_platform.storage import registry

WORKER_THREADS = 4  # two cores; DuckDB releases the interpreter lock while it reads


def _error(status: int, message: str, request_id: str) -> JSONResponse:
    return JSONResponse({"error": message, REQUEST_ID_COLUMN: request_id}, status_code=status)


def _answer(state: ServedState, log: ServedLog, name: str, body, request_id: str) -> tuple[dict, Callable]:
    """The answer to a predict request, logged, and the shadow scoring to run once it has been sent."""
    served = state.current  # one state for the whole request, whatever a swap does meanwhile
    model = served.champions.get(name)
    if model is None:
        known = sorted(served.champions)
        if name in served.catalog.models:
            raise BadRequestError(f"model '{name}' is not served: no version of it is deployed yet (served: "
                                  f"{', '.join(known) or 'none'})", 404)
        raise BadRequestError(f"unknown model '{name}'{did_you_mean(name, known)} (served: "
                              f"{', '.join(known) or 'none'})", 404)
    request = parse_request(body, served.key_types[name])
    served_at = registry.now()
    rows = score_request(served, model, request)
    log.append(model, rows, request_id, served_at, request.prediction_time, shadow=False)
    shadow = served.shadows.get(name)

    def score_shadow() -> None:
        """The challenger on the same rows, logged after the answer has left (never returned)."""
        if shadow is None:
            return
        try:
            log.append(shadow, score_request(served, shadow, request), request_id, served_at,
                       request.prediction_time, shadow=True, shadowing=model.trained.model_version)
        except Exception:  # never the client's problem: the champion answered; the fault is reported, not hidden
            print(f"ml-platform serve: shadow {shadow.trained.model_version} failed on request {request_id}:\n"
                  f"{traceback.format_exc()}", file=sys.stderr)

    kind = "threshold" if model.threshold is not None else model.decision.kind
    predictions = [{"keys": row.keys, "partition_date": row.partition_date, "score": row.score,
                    "decision": row.decision, "decision_kind": kind, "decision_parameter": row.decision_parameter,
                    "features_served": row.features_served} for row in rows]
    return {REQUEST_ID_COLUMN: request_id, "model": name, **model.provenance(), "served_at": served_at.isoformat(),
            "predictions": predictions}, score_shadow


def create_app(state: ServedState) -> Starlette:
    """The application over a served state (started and stopped with the application)."""
    log = ServedLog(data_folder(state.project))
    workers: dict[str, anyio.CapacityLimiter] = {}  # made in the event loop, when the application starts

    async def in_worker(function: Callable, *arguments):
        return await anyio.to_thread.run_sync(partial(function, *arguments), limiter=workers["limiter"])

    async def predict(request: Request) -> JSONResponse:
        request_id = uuid.uuid4().hex
        try:
            raw = await request.body()
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                return _error(400, f"body: not valid JSON ({error})", request_id)
            answer, shadow = await in_worker(_answer, state, log, request.path_params["name"], body, request_id)
            return JSONResponse(answer, background=BackgroundTask(in_worker, shadow))
        except BadRequestError as error:
            return _error(error.status, str(error), request_id)
        except ServingError as error:
            return _error(503, str(error), request_id)
        except Exception:
            print(f"ml-platform serve: request {request_id} failed:\n{traceback.format_exc()}", file=sys.stderr)
            return _error(500, "internal error: the server failed to answer; its log names this request id",
                          request_id)

    async def health(request: Request) -> JSONResponse:
        served = state.current
        return JSONResponse({
            "status": "ok", "reloads": state.reloads, "last_reload_error": state.last_reload_error,
            "not_served": state.problems,
            # since the last swap: feature-set days computed on demand, and model-version days scored
            "computed_on_demand": served.reader.computations.builds, "days_scored": served.reader.scored.builds,
            "models": {name: {**model.provenance(),
                              "shadow": served.shadows[name].trained.model_version if name in served.shadows
                              else None}
                       for name, model in served.champions.items()}})

    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(openapi_document())

    @contextlib.asynccontextmanager
    async def lifespan(application: Starlette):
        workers["limiter"] = anyio.CapacityLimiter(WORKER_THREADS)
        state.start()
        try:
            yield
        finally:
            state.stop()

    return Starlette(routes=[Route("/v1/models/{name}/predict", predict, methods=["POST"]),
                             Route("/health", health, methods=["GET"]),
                             Route("/openapi.json", openapi, methods=["GET"])], lifespan=lifespan)
