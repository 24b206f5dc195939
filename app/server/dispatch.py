"""API requests on the shared engine owner: one generation at a time, a bounded wait, hang-up stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.engine.owner import Ticket
from app.engine.types import GenerationResult
from app.errors import Cancelled, UserError
from app.server.errors import ApiError, from_user_error, server_error
from app.server.models import loaded_model, resolve

if TYPE_CHECKING:
    from app.chat.service import ChatService
    from app.engine.owner import EngineOwner
    from app.server.schema import Request

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


@dataclass(frozen=True)
class Event:
    """What the owner thread reports: ``start`` (the answering model), ``text``, ``done``,
    ``error`` or ``gone`` (stopped before it began)."""

    kind: str
    text: str = ""
    result: GenerationResult | None = None
    error: ApiError | None = None


class Job:
    """One request, between the owner thread (which feeds it) and the event loop (which reads)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, dispatcher: Dispatcher) -> None:
        self.ticket = Ticket()
        self.model = ""
        self._loop = loop
        self._dispatcher = dispatcher
        self._events: asyncio.Queue[Event] = asyncio.Queue()

    def put(self, event: Event) -> None:
        """Called on the owner thread; a closed event loop (server gone) stops the request."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:
            self.ticket.cancel()

    async def next(self) -> Event:
        return await self._events.get()

    async def batch(self) -> list[Event]:
        """The next event and every one already queued behind it (a run of text goes as one)."""
        events = [await self._events.get()]
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                events.append(self._events.get_nowait())
        return events

    def cancel(self) -> None:
        """The client left (or the server stops): a waiting request never starts, a running one
        stops within one token."""
        self._dispatcher._left(self)
        self.ticket.cancel()


class Dispatcher:
    """Queues API requests on the engine owner the window (or ``serve``) created.

    Work on the owner runs one item at a time, so an API request waits for the window's reply
    (and the window's for it); at most ``max_waiting`` API requests wait, more get 429.
    ``save_history()`` says, per request, whether a chat request is stored as a conversation;
    ``on_stored`` hears the id of each conversation so written.
    """

    def __init__(self, owner: EngineOwner[ChatService], *, max_waiting: int,
                 switch_models: bool, save_history: Callable[[], bool] = lambda: False,
                 on_stored: Callable[[int], None] | None = None) -> None:
        self.owner = owner
        self.max_waiting = max_waiting
        self.switch_models = switch_models
        self.save_history = save_history
        self.on_stored = on_stored
        self._lock = threading.Lock()
        self._waiting: set[Job] = set()
        self._live: set[Job] = set()

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def submit(self, request: Request) -> Job:
        """Queue ``request`` (on the event loop); ApiError 429 when too many already wait."""
        job = Job(asyncio.get_running_loop(), self)
        with self._lock:
            if len(self._waiting) >= self.max_waiting:
                raise ApiError(429, f"{self.max_waiting} requests are already waiting for the "
                               "model; retry later.", kind="rate_limit_error",
                               code="rate_limit_exceeded",
                               headers={"Retry-After": str(RETRY_AFTER_S)})
            self._waiting.add(job)
            self._live.add(job)
        try:
            self.owner.submit(self._run, job, request)
        except RuntimeError:  # the owner has shut down
            self._done(job)
            raise ApiError(503, "The model is shutting down.", kind="server_error") from None
        return job

    def cancel_all(self) -> None:
        """Stop every API request (the server is stopping)."""
        with self._lock:
            jobs = list(self._live)
        for job in jobs:
            job.cancel()

    def _left(self, job: Job) -> None:
        with self._lock:
            self._waiting.discard(job)

    def _begin(self, job: Job) -> bool:
        with self._lock:
            self._waiting.discard(job)
        return not job.ticket.cancelled

    def _done(self, job: Job) -> None:
        with self._lock:
            self._waiting.discard(job)
            self._live.discard(job)

    # -- on the owner thread ---------------------------------------------------------------
    def _run(self, job: Job, request: Request) -> None:
        try:
            if not self._begin(job):
                raise Cancelled("The client left before its request started.")
            service = self.owner.resource
            job.model = self._model(service, request.model)
            save = bool(request.messages) and self.save_history()
            if request.messages:
                reply = service.complete(request.messages, overrides=request.overrides,
                                         ticket=job.ticket, stop=request.stop, save=save)
            else:
                reply = service.complete_text(request.prompt, overrides=request.overrides,
                                              ticket=job.ticket, stop=request.stop)
            job.put(Event("start"))
            for chunk in reply:
                job.put(Event("text", chunk))
            result = reply.result
            if result.finish_reason == "error":
                job.put(Event("error", error=server_error(result.error or "Generation failed.")))
            else:
                job.put(Event("done", result=result))
            if save and reply.conversation_id is not None and self.on_stored is not None:
                self.on_stored(reply.conversation_id)
        except Cancelled:
            job.put(Event("gone"))
        except ApiError as err:
            job.put(Event("error", error=err))
        except UserError as err:
            job.put(Event("error", error=from_user_error(
                err, prompt_param="messages" if request.messages else "prompt")))
        except Exception:
            log.exception("an API request failed")
            job.put(Event("error", error=server_error()))
        finally:
            self._done(job)

    def _model(self, service: ChatService, requested: str | None) -> str:
        """The id of the model that answers ``requested``, loading it where that is allowed."""
        loaded = loaded_model(service)
        if requested is None or (loaded is not None and loaded.matches(requested)):
            if loaded is None:
                raise ApiError(503, "No model is loaded; choose one in Llama Desk first.",
                               kind="server_error", code="model_not_loaded")
            return loaded.id
        found = resolve(requested)
        if found is None:
            raise ApiError(404, f"The model {requested!r} does not exist; GET /v1/models lists "
                           "the installed models.", param="model", code="model_not_found")
        if loaded is not None and loaded.path == found.path.resolve():
            return loaded.id
        if not self.switch_models:
            now = f"ask for {loaded.id!r} (loaded now) or " if loaded else ""
            raise ApiError(400, f"The API does not switch the Llama Desk window's model: {now}"
                           f"choose {found.name!r} in the window first.", param="model",
                           code="model_not_loaded")
        return service.load_model(str(found.path)).name
