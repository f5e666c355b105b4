"""``GET /metrics``: the instance's Prometheus metrics (services/metrics.py), for an admin token or a
client in ``METRICS_ALLOW`` (docs/operations.md#metrics). Not in the OpenAPI document: it is for a
scraper, not an API client."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import BearerDep, SessionDep, StateDep, get_admin
from services.client_ip import client_ip, parse_ip
from services.metrics import CONTENT_TYPE

router = APIRouter(include_in_schema=False)


def allowed_without_token(ip: str, state: StateDep) -> bool:
    """Whether the client IP (as TRUSTED_PROXIES decides it) is in one of the METRICS_ALLOW ranges."""
    address = parse_ip(ip)
    if address is None:
        return False
    return any(
        address.version == net.version and address in net for net in state.settings.metrics_allow_networks
    )


@router.get("/metrics")
def metrics(request: Request, state: StateDep, session: SessionDep, credentials: BearerDep) -> Response:
    """401 without credentials, 403 with a token that is not an admin's, from outside METRICS_ALLOW."""
    if not allowed_without_token(client_ip(request.scope), state):
        get_admin(session, state, credentials)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)
