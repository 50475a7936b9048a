"""The ``?refresh=`` parameter of the pages whose parts update in place: seconds between
refreshes, 0 for none, at most 300 (a bad value is a 422 naming ``refresh``).

>>> from fastapi import FastAPI
>>> from fastapi.testclient import TestClient
>>> app = FastAPI()
>>> @app.get("/page")
... def page(refresh: Refresh = 5) -> int:
...     return refresh
>>> client = TestClient(app)
>>> client.get("/page").json(), client.get("/page?refresh=0").json()
(5, 0)
>>> client.get("/page?refresh=301").json()["detail"][0]["loc"]
['query', 'refresh']
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

#: Seconds between refreshes of a page's live parts; 0 turns them off.
Refresh = Annotated[int, Query(ge=0, le=300)]
#: The refresh a run page takes when ``?refresh=`` is not given.
DEFAULT_REFRESH_S = 5

__all__ = ["DEFAULT_REFRESH_S", "Refresh"]
