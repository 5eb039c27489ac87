"""Run the custom actions inside the Rasa server instead of calling a separate action server.

Why: the action server was a second copy of the triage engine, the escalation service and a Python
runtime (about 340 MB resident, `make bench`) whose only job was to receive the whole tracker as
JSON over loopback on each custom action and send events back. Rasa already holds the engine (the
NLU safety net builds it), so running rasa-sdk's `ActionExecutor` in the same process saves that
memory, the serialisation and the HTTP hop, and removes a listening port.

The seam is Rasa's own: `RemoteAction.run` asks its action endpoint to `request(json=...)` and
reads the reply. `InProcessActions` is that endpoint; it answers as rasa-sdk's webhook would
(a rejection as HTTP 400, an unknown action as 404, a crash as 500), so Rasa validates the reply,
utters the responses and applies the events exactly as it does with a separate server. The reply
goes through JSON once, so Rasa never stores an object an HTTP reply could not carry.

The separate action server (`python -m bot actions`, `--action-url`) remains for deployments
that scale actions apart from Rasa (deploy/compose.yml).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from rasa.utils.endpoints import ClientResponseError, EndpointConfig
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection, ActionNotFoundException

log = logging.getLogger(__name__)
URL = "inprocess://actions"


class InProcessActions(EndpointConfig):
    """An action endpoint whose `request` runs the action in this process."""

    def __init__(self, package: str = "actions", **kwargs: Any) -> None:
        super().__init__(url=URL, **kwargs)
        self.executor = ActionExecutor()
        self.executor.register_package(package)

    async def request(
        self,
        method: str = "post",
        subpath: str | None = None,
        content_type: str | None = None,
        compress: bool = False,
        **kwargs: Any,
    ) -> Any:
        call = kwargs.get("json") or {}
        try:
            result = await self.executor.run(call)
        except ActionExecutionRejection as e:
            raise _error(400, {"error": e.message, "action_name": e.action_name}) from e
        except ActionNotFoundException as e:
            raise _error(404, {"error": e.message, "action_name": e.action_name}) from e
        except Exception as e:  # what rasa-sdk's webhook answers with 500; Rasa then predicts on
            log.exception("action %s failed", call.get("next_action"))
            raise _error(500, {"error": type(e).__name__}) from e
        return json.loads(json.dumps(result))

    def copy(self) -> InProcessActions:  # the executor is stateless; a copy would lose it
        return self


def _error(status: int, body: dict[str, Any]) -> ClientResponseError:
    return ClientResponseError(status, "in-process action", json.dumps(body))


def install(package: str = "actions") -> None:
    """Make `rasa run` use in-process actions whatever endpoints.yml says about action_endpoint."""
    from rasa.core.utils import AvailableEndpoints

    original = AvailableEndpoints.read_endpoints.__func__  # type: ignore[attr-defined]
    if getattr(original, "in_process", False):
        return

    def read_endpoints(cls: type, endpoint_file: str | None) -> AvailableEndpoints:
        endpoints = original(cls, endpoint_file)
        kwargs = endpoints.action.kwargs if endpoints.action else {}
        endpoints.action = InProcessActions(package, **kwargs)
        return endpoints

    read_endpoints.in_process = True  # type: ignore[attr-defined]
    AvailableEndpoints.read_endpoints = classmethod(read_endpoints)  # type: ignore[method-assign, assignment]
