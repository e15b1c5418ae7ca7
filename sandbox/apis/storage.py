from ..server import Router


def new_bucket_record(name, project, number, body, now):
    return {"name": name, "_project": project}


def register(r: Router) -> None:
    pass
