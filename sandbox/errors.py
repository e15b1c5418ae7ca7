"""Google's error bodies (gcp-api-behaviour.md §0, §12.2).

One exception type, raised by every handler, rendered by one function. ``style`` picks the flavour a given API
uses: the newer APIs (Service Usage, Resource Manager, IAM, Container) send ``status`` and ``details``; Compute, SQL
Admin and Storage send ``errors[].reason`` and no ``status``.
"""

from __future__ import annotations

from typing import Any

from . import catalog

HTTP_FOR_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}

# The numeric google.rpc.Code of each status (used in operation errors).
RPC_CODE = {
    "OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4, "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8, "FAILED_PRECONDITION": 9, "ABORTED": 10,
    "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15,
    "UNAUTHENTICATED": 16,
}

STATUS_FOR_HTTP = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED",
    502: "UNAVAILABLE", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}

DEFAULT_REASON = {
    "INVALID_ARGUMENT": "badRequest", "FAILED_PRECONDITION": "failedPrecondition", "NOT_FOUND": "notFound",
    "ALREADY_EXISTS": "alreadyExists", "PERMISSION_DENIED": "forbidden", "UNAUTHENTICATED": "unauthorized",
    "RESOURCE_EXHAUSTED": "rateLimitExceeded", "ABORTED": "aborted", "INTERNAL": "backendError",
    "UNAVAILABLE": "backendError", "DEADLINE_EXCEEDED": "deadlineExceeded", "UNIMPLEMENTED": "notImplemented",
}

DEFAULT_MESSAGE = {
    500: "Internal error encountered.",
    502: "Bad Gateway",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
    429: "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute' of service "
         "'sandbox.googleapis.com' for consumer 'project_number:123456789012'.",
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
         "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    409: "The operation was aborted.",
    400: "Request contains an invalid argument.",
}


class ApiError(Exception):
    """An error answer. ``status`` is the canonical google.rpc code name; ``http`` defaults from it."""

    def __init__(
        self,
        status: str,
        message: str,
        *,
        http: int | None = None,
        reason: str | None = None,
        details: list[dict] | None = None,
        style: str | None = None,
        errors_extra: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.http = http or HTTP_FOR_STATUS.get(status, 500)
        self.reason = reason or DEFAULT_REASON.get(status, "error")
        self.details = details or []
        self.style = style
        self.errors_extra = errors_extra or {}

    def body(self, style: str = "rpc") -> dict:
        style = self.style or style
        err: dict[str, Any] = {"code": self.http, "message": self.message}
        item = {"message": self.message, "domain": "global", "reason": self.reason}
        item.update(self.errors_extra)
        err["errors"] = [item]
        if style == "rpc":
            err["status"] = self.status
            if self.details:
                err["details"] = self.details
        return {"error": err}


def error_body_for_http(http: int, message: str | None = None, style: str = "rpc") -> dict:
    status = STATUS_FOR_HTTP.get(http, "UNKNOWN")
    return ApiError(status, message or DEFAULT_MESSAGE.get(http, "Error"), http=http).body(style)


def error_info(reason: str, domain: str, metadata: dict) -> dict:
    return {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason, "domain": domain,
            "metadata": metadata}


def not_found(message: str, **kw) -> ApiError:
    return ApiError("NOT_FOUND", message, **kw)


def invalid(message: str, **kw) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message, **kw)


def already_exists(message: str, **kw) -> ApiError:
    return ApiError("ALREADY_EXISTS", message, **kw)


def failed_precondition(message: str, **kw) -> ApiError:
    return ApiError("FAILED_PRECONDITION", message, **kw)


def permission_denied(message: str, **kw) -> ApiError:
    return ApiError("PERMISSION_DENIED", message, **kw)


def permission_error(api: str, permission: str, resource: str, caller: str | None) -> ApiError:
    if api == "iam":
        return ApiError("PERMISSION_DENIED", f"Permission '{permission}' denied on resource (or it may not exist).",
                        reason="forbidden", details=[error_info("IAM_PERMISSION_DENIED", "iam.googleapis.com",
                                                                {"permission": permission})])
    if api == "compute":
        return ApiError("PERMISSION_DENIED", f"Required '{permission}' permission for '{resource}'",
                        reason="forbidden", style="compute")
    if api == "container":
        return ApiError("PERMISSION_DENIED", f"Required \"{permission}\" permission(s) for \"{resource}\".")
    if api == "sqladmin":
        return ApiError("PERMISSION_DENIED", "The client is not authorized to make this request.",
                        reason="notAuthorized", style="compute")
    if api == "storage":
        who = caller or "Anonymous caller"
        return ApiError("PERMISSION_DENIED",
                        f"{who} does not have {permission} access to the Google Cloud Storage bucket. "
                        f"Permission '{permission}' denied on resource (or it may not exist).",
                        reason="forbidden", style="compute")
    if api == "serviceusage":
        return ApiError("PERMISSION_DENIED", f"Permission denied to {permission.rsplit('.', 1)[-1]} service "
                        f"[{resource}]", details=[error_info("AUTH_PERMISSION_DENIED", "serviceusage.googleapis.com",
                                                              {"permission": permission})])
    return ApiError("PERMISSION_DENIED", "The caller does not have permission",
                    details=[error_info("IAM_PERMISSION_DENIED", "cloudresourcemanager.googleapis.com",
                                        {"permission": permission, "resource": resource})])


def service_disabled_error(project: dict, service: str) -> ApiError:
    num = project["projectNumber"]
    title = catalog.SERVICE_TITLES.get(service, service)
    url = f"https://console.developers.google.com/apis/api/{service}/overview?project={num}"
    msg = (f"{title} has not been used in project {num} before or it is disabled. Enable it by visiting {url} "
           f"then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our "
           f"systems and retry.")
    return ApiError(
        "PERMISSION_DENIED", msg, style="rpc", reason="accessNotConfigured",
        errors_extra={"domain": "usageLimits", "extendedHelp": "https://console.developers.google.com"},
        details=[
            error_info("SERVICE_DISABLED", "googleapis.com", {
                "service": service, "consumer": f"projects/{num}", "serviceTitle": title,
                "containerInfo": num, "activationUrl": url}),
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": msg},
            {"@type": "type.googleapis.com/google.rpc.Help",
             "links": [{"description": "Google developers console API activation", "url": url}]},
        ],
    )
