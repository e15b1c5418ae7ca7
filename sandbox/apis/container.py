from ..server import Router


def register(r: Router) -> None:
    pass
