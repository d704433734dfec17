"""``mict serve``: a web page and an HTTP API over a :class:`~mictnet.inference.Predictor`.

``create_app(predictor)`` is a Starlette app: ``GET /`` (the page, self-contained),
``POST /api/predict`` (multipart field ``file``; ``?timeline=1`` adds the timeline) answering
``mict predict --json``'s record, ``POST /api/explain`` (the same upload; ``?class=NAME``,
default the top class) answering ``mict explain``'s ``explain.json`` record (heat per frame),
``GET /api/model`` and ``GET /healthz``. Uploads stream into
temporary files deleted after the answer; inference runs in a bounded thread pool, so concurrent
requests queue. Errors are JSON ``{"error": "..."}``: 400 (no file), 413 (over the limit), 422
(not a readable video), 500.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..data.decode import VideoError
from ..inference import Predictor, prediction_record
from .page import PAGE
from .upload import Upload, UploadError, receive_file

log = logging.getLogger(__name__)
DEFAULT_MAX_UPLOAD_MB = 200.0


def model_info(predictor: Predictor) -> dict:
    """Model name, classes, input size (``T, H, W``) and clip spec of ``predictor``."""
    spec = getattr(predictor.model, "spec", None)
    return {"model": spec.name if spec else type(predictor.model).__name__,
            "num_classes": len(predictor.classes), "classes": predictor.classes,
            "input_size": list(predictor.clip.input_size), "clip": predictor.clip.to_dict()}


def predict_upload(predictor: Predictor, upload: Upload, timeline: bool) -> dict:
    """``mict predict --json``'s record of an uploaded file, named by the client's file name."""
    if timeline:
        prediction, steps = predictor.predict_with_timeline(upload.path)
    else:
        prediction, steps = predictor.predict(upload.path), None
    return prediction_record(replace(prediction, video=upload.name), steps)


def explain_upload(predictor: Predictor, upload: Upload, target: str | None) -> dict:
    """``mict explain``'s record of an uploaded file (Grad-CAM of ``target`` or the top
    class), named by the client's file name."""
    from .explain import explain

    [found] = explain(predictor, upload.path, [target] if target else None)
    return found.to_dict() | {"video": upload.name}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(predictor: Predictor, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               workers: int = 1) -> Starlette:
    """The app; ``workers`` threads run inference (more requests wait their turn)."""
    if workers < 1 or max_upload_mb <= 0:
        raise ValueError(f"need workers >= 1 and max_upload_mb > 0, got {workers}, "
                         f"{max_upload_mb}")
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mict-predict")
    max_bytes = int(max_upload_mb * 2**20)
    info = model_info(predictor)

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def model(request: Request) -> Response:
        return JSONResponse(info)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def predict(request: Request) -> Response:
        timeline = request.query_params.get("timeline", "0").lower() in ("1", "true", "yes")
        try:
            upload = await receive_file(request, "file", max_bytes)
        except UploadError as err:
            return error(err.status, err.message)
        try:
            loop = asyncio.get_running_loop()
            record = await loop.run_in_executor(pool, predict_upload, predictor, upload, timeline)
        except VideoError as err:
            return error(422, f"{upload.name}: {err.problem}")
        finally:
            upload.path.unlink(missing_ok=True)
        return JSONResponse(record)

    async def explain(request: Request) -> Response:
        target = request.query_params.get("class") or None
        if target is not None and target not in predictor.classes:
            return error(400, f"unknown class {target!r}")
        try:
            upload = await receive_file(request, "file", max_bytes)
        except UploadError as err:
            return error(err.status, err.message)
        try:
            loop = asyncio.get_running_loop()
            record = await loop.run_in_executor(pool, explain_upload, predictor, upload, target)
        except VideoError as err:
            return error(422, f"{upload.name}: {err.problem}")
        finally:
            upload.path.unlink(missing_ok=True)
        return JSONResponse(record)

    async def refused(request: Request, exc: HTTPException) -> Response:
        """404, 405 and the like: JSON as every other error, their headers (``Allow``) kept."""
        response = error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
        response.headers.update(exc.headers or {})
        return response

    async def failed(request: Request, exc: Exception) -> Response:
        log.exception("error answering %s", request.url.path, exc_info=exc)
        return error(500, f"internal error: {type(exc).__name__}: {exc}")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        pool.shutdown(wait=False, cancel_futures=True)

    routes = [Route("/", page), Route("/api/model", model), Route("/healthz", healthz),
              Route("/api/predict", predict, methods=["POST"]),
              Route("/api/explain", explain, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={HTTPException: refused, Exception: failed},
                     lifespan=lifespan)
