import secrets

from ..server import Router
from ..store import numeric_id


def new_sa_record(project: str, account_id: str, display_name: str, description: str, now: float) -> dict:
    email = f"{account_id}@{project}.iam.gserviceaccount.com"
    uid = str(10**20 + secrets.randbelow(10**20))
    return {"name": f"projects/{project}/serviceAccounts/{email}", "projectId": project, "uniqueId": uid,
            "email": email, "displayName": display_name, "description": description, "oauth2ClientId": uid,
            "etag": "MDEwMjE5MjA=", "created": now, "visible_at": now, "visible_iam_at": now}


def register(r: Router) -> None:
    pass
