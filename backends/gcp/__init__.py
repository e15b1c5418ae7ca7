"""The Google client layer (stable API for the other backends).

Import the submodule you need (``from backends.gcp.calls import call``): importing ``backends.gcp`` is cheap, and
the heavy client libraries load on first use, in worker threads.

Requests (``backends.gcp.calls``)
    ``await call(api, factory, *, raw=False, what="", project="", region="", retry_if=None, budget=None)``
        ``api`` is one of ``serviceusage``, ``cloudresourcemanager`` (v1), ``cloudresourcemanager.v3``, ``iam``,
        ``compute``, ``container``, ``sqladmin`` (v1beta4), ``storage`` (JSON v1). ``factory(svc)`` builds the
        googleapiclient request (on one shared service per API, under a per-API lock: keep the factory to
        request building); it is executed in ``asyncio.to_thread`` with that thread's own authorised http. Transient errors
        (429, 5xx, 409 operationInProgress, 400 resourceNotReady, Service Usage "another activation in progress"
        and "Precondition check failed.") are retried with capped exponential backoff + jitter inside a
        per-request budget (90 s x time scale). Other errors raise ``InstallerError`` (see ``errors.classify``),
        or ``errors.ApiError`` with ``raw=True`` (``.http``, ``.message``, ``.reasons``, ``.not_found``,
        ``.already_exists``). ``retry_if(ApiError) -> bool`` retries more (e.g. ``errors.sa_not_visible``) within
        ``consistency_budget`` (300 s x time scale). A SERVICE_DISABLED answer for an API this process has just
        enabled is waited out (propagation; ``propagation=False`` turns that off).
    ``call_sync(...)``: the same, blocking. ``await call_storage(project, fn)``: ``fn(storage.Client)`` in a thread.
Operations (``backends.gcp.operations``)
    ``op_ref(api, op, project) -> dict`` (JSON-able; remember it before waiting) and
    ``await wait(ref, ctx=None, what="", expected_seconds=None)``: one waiter for Service Usage, Compute, GKE and
    SQL operations, polling 2 s -> 10 s (x ``MLOPS_INSTALL_TIME_SCALE``), emitting ``ctx.waiting``/``progress``;
    an operation error raises ``InstallerError``.
Errors (``backends.gcp.errors``)
    ``parse(exc) -> ApiError | None``, ``classify(ApiError, what=, project=, region=) -> InstallerError`` with
    ErrorClass API_DISABLED / PERMISSION_DENIED / QUOTA / ORG_POLICY / NAME_TAKEN / AUTH / TRANSIENT / UNEXPECTED
    and a remedy; predicates ``is_transient``, ``is_service_disabled``, ``sa_not_visible``.
Auth (``backends.gcp.auth``)
    ``credentials() -> (creds, project)``, ``access_token() -> str`` (refreshed as needed; for Kubernetes bearer
    auth), ``account() -> (email, source)``.
Clients (``backends.gcp.clients``)
    ``request(api, factory)`` + ``thread_http()`` (what ``call`` uses); ``service(api)``: a whole service of
    this thread's own; ``storage_client(project)``: this thread's google-cloud-storage client.
GKE access (``backends.gcp.gke``)
    ``await cluster_access(project, location, name) -> {"endpoint", "ca_pem", "token"}``.
Environment (``backends.gcp.env``)
    ``endpoint(api)``, ``time_scale()``, ``scaled(seconds)``.
"""
