"""A fake Kubernetes API server, one per GKE cluster of the sandbox.

`KubeApiServer` (in `server.py`) speaks enough of the Kubernetes REST API over TLS that the real `kubernetes`
Python client (typed clients and DynamicClient) and real `kubectl` (including `apply --server-side`, `get`,
`wait`) work against it. See `server.py` for what is and is not reproduced.
"""
