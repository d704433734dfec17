"""``mict serve``: a web page and an HTTP API over a :class:`~mictnet.inference.Predictor`.

``create_app(predictor)`` is a Starlette app: ``GET /`` (the page, self-contained),
``POST /api/predict`` (multipart field ``file``; ``?timeline=1`` adds the timeline,
``?preview=1`` a few JPEG frames) answering ``mict predict --json``'s record, ``POST
/api/explain`` (the same upload; ``?class=NAME``, default the top class) answering ``mict
explain``'s ``explain.json`` record (heat per frame), the camera mode's ``POST /api/camera``,
``POST /api/camera/ID?frames=N`` and ``DELETE /api/camera/ID`` (:mod:`.camera`), ``GET
/api/model`` and ``GET /healthz``.
Uploads stream into temporary files of the server's own folder, deleted on every path
(answered, refused, client gone, cancelled); a server removes the files a killed one left.
Inference runs in a bounded thread pool, so concurrent requests queue; a request's claims are
checked first (:class:`~mictnet.serve.limits.Limits`) and its work stops at its time budget.
Errors are JSON ``{"error": "..."}``: 400 (no file), 401 (no token, with ``token``), 404, 405,
413 (over the limit), 422 (not a readable video, or beyond the limits), 500, 503 (over the time
budget).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..data.decode import VideoError, VideoReader
from ..inference import FALLBACK_FPS, BudgetExceeded, Predictor, budget_check, prediction_record
from .camera import CameraError, CameraSessions
from .limits import DEFAULT_LIMITS, Limits
from .page import PAGE
from .preview import preview
from .tempdir import UploadFolder
from .upload import Upload, UploadError, receive_file

log = logging.getLogger(__name__)
DEFAULT_MAX_UPLOAD_MB = 200.0


def model_info(predictor: Predictor) -> dict:
    """Model name, classes, input size (``T, H, W``) and clip spec of ``predictor``."""
    spec = getattr(predictor.model, "spec", None)
    return {"model": spec.name if spec else type(predictor.model).__name__,
            "num_classes": len(predictor.classes), "classes": predictor.classes,
            "input_size": list(predictor.clip.input_size), "clip": predictor.clip.to_dict()}


def predict_upload(predictor: Predictor, upload: Upload, timeline: bool,
                   limits: Limits = DEFAULT_LIMITS, deadline: float | None = None,
                   with_preview: bool = False) -> dict:
    """``mict predict --json``'s record of an uploaded file, named by the client's file name;
    the file's claims are checked against ``limits`` first, the work stops at ``deadline``
    (:class:`~mictnet.inference.BudgetExceeded`). A timeline over ``limits.max_steps`` gets
    coarser steps, said in the record's ``notes``; ``with_preview`` adds ``preview``
    (:func:`~mictnet.serve.preview.preview`)."""
    check = budget_check(deadline)
    with VideoReader(upload.path, check=check) as reader:
        info = reader.info
    limits.check(upload.name, info)
    fps = info.fps or FALLBACK_FPS
    notes, steps = [], None
    if timeline:
        step = limits.step_seconds(info, fps)
        prediction, steps = predictor.predict_with_timeline(upload.path, step_seconds=step,
                                                            deadline=deadline)
        if step != 1:
            notes.append(f"timeline: one step per {step:g} s (at most {limits.max_steps} "
                         "steps)")
    else:
        prediction = predictor.predict(upload.path, deadline=deadline)
    record = prediction_record(replace(prediction, video=upload.name), steps)
    if with_preview:
        record["preview"] = preview(upload.path, fps, check=check)
    return {**record, "notes": notes} if notes else record


def explain_upload(predictor: Predictor, upload: Upload, target: str | None,
                   limits: Limits = DEFAULT_LIMITS, deadline: float | None = None) -> dict:
    """``mict explain``'s record of an uploaded file (Grad-CAM of ``target`` or the top
    class), named by the client's file name; the file's claims are checked first (the
    ``deadline`` only while reading them: the explanation itself runs to its end)."""
    from .explain import explain

    with VideoReader(upload.path, check=budget_check(deadline)) as reader:
        limits.check(upload.name, reader.info)
    [found] = explain(predictor, upload.path, [target] if target else None)
    return found.to_dict() | {"video": upload.name}


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(predictor: Predictor, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               workers: int = 1, timeout: float | None = None, token: str | None = None,
               limits: Limits = DEFAULT_LIMITS, upload_dir: str | None = None) -> Starlette:
    """The app; ``workers`` threads run inference (more requests wait their turn), each request
    within ``timeout`` seconds from its upload's end (503 after; ``None``: no limit); ``token``:
    the API asks for ``Authorization: Bearer TOKEN`` (401 without). Uploads go to this server's
    own folder under ``upload_dir`` (default: the temp folder), where what a killed server left
    is removed now (:class:`~mictnet.serve.tempdir.UploadFolder`)."""
    if workers < 1 or max_upload_mb <= 0 or (timeout is not None and timeout <= 0):
        raise ValueError(f"need workers >= 1, max_upload_mb > 0 and timeout > 0, got {workers}, "
                         f"{max_upload_mb}, {timeout}")
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mict-predict")
    max_bytes = int(max_upload_mb * 2**20)
    info = model_info(predictor)
    folder = UploadFolder(upload_dir)
    if folder.removed:
        log.warning("removed %d upload(s) a previous server left in %s", folder.removed,
                    folder.root)

    def authorised(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        return token is None or hmac.compare_digest(given.encode(), f"Bearer {token}".encode())

    def api(handler):
        async def guarded(request: Request) -> Response:
            if not authorised(request):
                return error(401, "this server needs its token: Authorization: Bearer TOKEN "
                             "(the page: open it as /?token=TOKEN)",
                             {"WWW-Authenticate": "Bearer"})
            return await handler(request)
        return guarded

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def model(request: Request) -> Response:
        return JSONResponse(info)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def answer(request: Request, work, *args) -> Response:
        """Receive the upload, run ``work(predictor, upload, *args, limits[, deadline])`` in
        the pool within the time budget, and answer its record; the file is removed when the
        work ends, however it ends (also if cancelled)."""
        try:
            upload = await receive_file(request, "file", max_bytes, str(folder.path))
        except UploadError as err:
            return error(err.status, err.message)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening
        deadline = None if timeout is None else time.monotonic() + timeout
        job = pool.submit(work, predictor, upload, *args, limits, deadline)
        job.add_done_callback(lambda _: upload.path.unlink(missing_ok=True))
        try:
            record = await asyncio.wait_for(asyncio.wrap_future(job), timeout)
        except VideoError as err:
            return error(422, f"{upload.name}: {err.problem}")
        except (BudgetExceeded, asyncio.TimeoutError):
            return error(503, f"{upload.name}: not answered within the server's time budget of "
                              f"{timeout:g} s (--timeout); try a shorter video")
        return JSONResponse(record)

    async def predict(request: Request) -> Response:
        timeline, with_preview = (request.query_params.get(name, "0").lower() in
                                  ("1", "true", "yes") for name in ("timeline", "preview"))
        return await answer(request, lambda *a: predict_upload(*a, with_preview=with_preview),
                            timeline)

    async def explain(request: Request) -> Response:
        target = request.query_params.get("class") or None
        if target is not None and target not in predictor.classes:
            return error(400, f"unknown class {target!r}")
        return await answer(request, explain_upload, target)

    cameras = CameraSessions(predictor)

    async def camera(work, *args) -> Response:
        """Run ``work(*args)`` of the camera sessions in the pool; its record, or its error."""
        try:
            record = await asyncio.wait_for(asyncio.wrap_future(pool.submit(work, *args)),
                                            timeout)
        except CameraError as err:
            return error(err.status, err.message)
        except asyncio.TimeoutError:
            return error(503, f"not answered within the server's time budget of {timeout:g} s")
        return JSONResponse(record)

    async def camera_open(request: Request) -> Response:
        return await camera(cameras.open)

    async def camera_frames(request: Request) -> Response:
        text = request.query_params.get("frames", "")
        if not text.isdigit():
            return error(400, f"?frames=N (the frames in the body) is needed, got {text!r}")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > cameras.max_body:
                    return error(413, f"over {cameras.max_body} bytes of frames")
        except ClientDisconnect:
            return Response(status_code=400)
        return await camera(cameras.push, request.path_params["session"], bytes(body),
                            int(text))

    async def camera_close(request: Request) -> Response:
        return await camera(cameras.close, request.path_params["session"])

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
        try:
            yield
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            folder.close()

    routes = [Route("/", page), Route("/api/model", api(model)), Route("/healthz", healthz),
              Route("/api/predict", api(predict), methods=["POST"]),
              Route("/api/explain", api(explain), methods=["POST"]),
              Route("/api/camera", api(camera_open), methods=["POST"]),
              Route("/api/camera/{session}", api(camera_frames), methods=["POST"]),
              Route("/api/camera/{session}", api(camera_close), methods=["DELETE"])]
    return Starlette(routes=routes, exception_handlers={HTTPException: refused, Exception: failed},
                     lifespan=lifespan)
