"""``/v1/admin``: keys and groups (admin keys only)."""

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from graphmem.api.errors import ApiError
from graphmem.api.models import GROUP_PATTERN, ID_PATTERN, KeyCreate, KeyView
from graphmem.api.server import LOCAL_TOKEN_HEADER, Principal, Server, admin_key, server

router = APIRouter(tags=["admin"])


@router.get("/v1/admin/keys", response_model=list[KeyView])
def list_keys(who: Principal = Depends(admin_key), served: Server = Depends(server)) -> list[dict[str, Any]]:
    """Every key (id, name, groups, admin); never the key or its hash."""
    return [r.public() for r in served.keys.list()]


@router.post("/v1/admin/keys", response_model=KeyView, status_code=201)
def create_key(
    body: KeyCreate, request: Request, who: Principal = Depends(admin_key), served: Server = Depends(server)
) -> dict[str, Any]:
    """Create a key bound to ``groups``; the plain key is in the answer, once.

    In local mode (no keys yet) the first key ends local mode, so it needs the one-time
    token `graphmem serve` printed at start (also in ``<home>/api-local-token``), sent as
    ``X-Graphmem-Local-Token``: a web page the user visits cannot know it."""
    if who.local:
        given = request.headers.get(LOCAL_TOKEN_HEADER, "").encode("utf-8", "replace")
        token = served.local_token
        if token is None or not hmac.compare_digest(given, token.encode()):
            raise ApiError(
                403,
                f"creating a key in local mode needs the one-time token that `graphmem serve` "
                f"printed at start and wrote to {served.local_token_path}: send it as "
                f"'{LOCAL_TOKEN_HEADER}: TOKEN' (or create keys with `graphmem keys add`)",
            )
    key, record = served.keys.add(body.groups, admin=body.admin, name=body.name)
    return {**record.public(), "key": key}


@router.delete("/v1/admin/keys/{key_id}")
def revoke_key(
    key_id: Annotated[str, Path(pattern=ID_PATTERN)],
    who: Principal = Depends(admin_key),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """Revoke a key: requests with it fail from now on."""
    if not served.keys.revoke(key_id):
        raise ApiError(404, f"no key {key_id!r}")
    return {"revoked": key_id}


@router.get("/v1/admin/groups")
def list_groups(who: Principal = Depends(admin_key), served: Server = Depends(server)) -> dict[str, Any]:
    """Every group the store holds."""
    return {"groups": served.groups.admin.groups()}


@router.delete("/v1/admin/groups/{group}")
def drop_group(
    group: Annotated[str, Path(pattern=GROUP_PATTERN)],
    who: Principal = Depends(admin_key),
    served: Server = Depends(server),
) -> dict[str, Any]:
    """Delete a group and everything in it (on the embedded store: its graph)."""
    if not served.groups.drop(group):
        raise ApiError(404, f"no group {group!r}")
    return {"dropped": group}
