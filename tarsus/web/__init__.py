"""The framework's HTTP app: ``tarsus web``, also served by ``tarsus up`` (docs/web.md).

Today it serves upstream TarsWeb's script API ``POST /api/upload_and_publish`` (what the
``make <Server>-upload`` targets of TarsCpp/TarsGo projects call), authenticated by a token file
the framework host generates; the web console (users, pages, the REST API) grows here.

* :mod:`tarsus.web.settings` — where it listens, what it talks to, its limits;
* :mod:`tarsus.web.token` — the token file and the constant-time check;
* :mod:`tarsus.web.form` — a multipart body streamed to disk with a size cap and its md5;
* :mod:`tarsus.web.publish` — the service layer: the admin registry and the package store
  (``tars.tarspatch.PatchObj``) over Tars RPC, upload-and-publish as steps, its text answer;
* :mod:`tarsus.web.app` — the ASGI app (FastAPI): routes, authentication, errors;
* :mod:`tarsus.web.server` — the app under uvicorn inside an asyncio program.

Importing this package imports none of FastAPI, Starlette or uvicorn (``tarsus up`` and the
CLI stay quick); :mod:`~tarsus.web.app` and :mod:`~tarsus.web.server` do.
"""
