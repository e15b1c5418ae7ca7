from ..server import Router


def ensure_default_network(srv, project: str, now: float) -> None:
    pass


def register(r: Router) -> None:
    pass
