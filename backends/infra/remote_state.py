"""Objects of the remote state (``installer.remote``): read, conditional write and conditional delete of one object
of a bucket, blocking (call them in a thread), with this thread's google-cloud-storage client.

Every write names the generation it replaces: ``if_generation_match`` (the JSON API's ``ifGenerationMatch`` query
parameter; 0: "succeed only if there are no live versions of the object" [disc: storage.v1 objects.insert]); a
write that lost a race is 412 Precondition Failed (https://cloud.google.com/storage/docs/request-preconditions),
which google-cloud-storage raises as ``google.api_core.exceptions.PreconditionFailed``
(google-cloud-storage ``docs/generation_metageneration.rst``).
"""
from __future__ import annotations

from typing import Any


class Lost(Exception):
    """412: the object's generation is not the one named (someone else wrote or deleted it meanwhile)."""


class NoBucket(Exception):
    """404 on the bucket: it does not exist (yet, or any more)."""


def _blob(project: str, bucket: str, name: str) -> Any:
    from backends.gcp.clients import storage_client

    return storage_client(project).bucket(bucket).blob(name)


def read(project: str, bucket: str, name: str) -> tuple[bytes, int] | None:
    """(content, generation) of ``gs://bucket/name``, None when there is no such object or bucket."""
    from google.api_core import exceptions as gexc

    from backends.gcp.clients import storage_client

    for _ in range(5):
        try:
            blob = storage_client(project).bucket(bucket).get_blob(name)  # None: no such object (or bucket)
            if blob is None:
                return None
            # the content of exactly the generation whose metadata was read (a newer write meanwhile: 412, again)
            gen = int(blob.generation)
            return blob.download_as_bytes(if_generation_match=gen), gen
        except gexc.PreconditionFailed:
            continue
        except gexc.NotFound:  # deleted between the two requests
            return None
    raise Lost(name)


def write(project: str, bucket: str, name: str, data: bytes, generation: int) -> int:
    """Write ``data`` if the object's live generation is ``generation`` (0: only if there is none); return the new
    generation. ``Lost`` on 412, ``NoBucket`` on 404."""
    from google.api_core import exceptions as gexc

    blob = _blob(project, bucket, name)
    try:
        # the library's default retry: a conditional upload is safe to send again (a repeat that finds its own
        # write is a 412, and the caller reads, merges and writes again)
        blob.upload_from_string(data, content_type="application/json", if_generation_match=generation)
    except gexc.PreconditionFailed:
        raise Lost(name) from None
    except gexc.NotFound:
        raise NoBucket(bucket) from None
    return int(blob.generation)


def delete(project: str, bucket: str, name: str, generation: int) -> bool:
    """Delete the object if its generation is ``generation``; False when it is gone already or was replaced."""
    from google.api_core import exceptions as gexc

    try:
        _blob(project, bucket, name).delete(if_generation_match=generation)
    except (gexc.PreconditionFailed, gexc.NotFound):
        return False
    return True


def labelled_buckets(project: str, label: str) -> list[tuple[str, str]]:
    """(bucket name, label value) of the project's buckets carrying ``label``."""
    from backends.gcp.clients import storage_client

    return [(b.name, (b.labels or {}).get(label)) for b in storage_client(project).list_buckets(retry=None)
            if (b.labels or {}).get(label)]
