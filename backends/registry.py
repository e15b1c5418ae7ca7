"""Maps the plan's step ids to their implementations (imported lazily: cloud clients are heavy)."""
from __future__ import annotations

from installer.plan import Plan
from installer.steps import Step


def build_steps(plan: Plan) -> dict[str, Step]:
    from backends.infra.steps import STEPS as infra
    from backends.kfp.steps import STEPS as kfp
    from backends.kfp.verify import STEPS as verify
    from backends.secrets.steps import STEPS as secrets

    from backends.gcp.auth import set_target_project
    set_target_project(plan.answers.project)  # user credentials carry the target project as their quota project

    registry = {**infra, **secrets, **kfp, **verify}  # step id -> class taking the StepSpec
    return {spec.id: registry[spec.id](spec) for spec in plan}


def warm_up() -> None:
    """Import what the steps import lazily (the Google and Kubernetes clients, YAML, the keyring and its backends)
    and build the discovery-based Google services (their documents parsed).

    Blocking and CPU-heavy (~1 s): ``installer.run.install`` calls it in a thread at the start (the wizard earlier,
    once its first frame is up, so the install finds it done), so none of it happens on the event loop or in the
    middle of a step (imports hold the import lock and the GIL, and each
    module imported mid-run grows the heap the garbage collector walks)."""
    import backends.infra.steps  # noqa: F401
    import backends.kfp.steps  # noqa: F401
    import backends.kfp.verify  # noqa: F401
    import backends.preflight  # noqa: F401
    import backends.secrets.steps  # noqa: F401

    import google.auth  # noqa: F401
    import google.auth.transport.requests  # noqa: F401
    import google_auth_httplib2  # noqa: F401
    import googleapiclient.discovery  # noqa: F401
    import googleapiclient.errors  # noqa: F401
    import httplib2  # noqa: F401
    import kfp_server_api  # noqa: F401
    import kubernetes.client  # noqa: F401
    import urllib3  # noqa: F401
    import yaml  # noqa: F401
    from google.cloud import storage  # noqa: F401

    from backends.secrets import custody
    custody.secure_keyring()  # keyring finds and probes its backends (entry points) once, then caches the choice

    from backends.gcp import auth, clients
    from installer.errors import InstallerError
    try:
        auth.credentials()  # a key file's RSA key is parsed here, once per process (see auth._default)
    except InstallerError:
        pass  # no credentials: the preflight says so, with the remedy
    clients.prebuild()  # the discovery documents parsed once per process (and per sandbox/credentials)
