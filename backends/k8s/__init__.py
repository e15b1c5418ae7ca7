"""Kubernetes access for the installer, without gcloud or a kubeconfig.

- ``auth``: Google access tokens (refreshed before they expire, so long waits keep working).
- ``client``: ``KubeClient``, a thin layer on ``kubernetes.client.ApiClient`` built from a cluster's endpoint,
  its CA (``masterAuth.clusterCaCertificate``) and a token; discovery; errors.
- ``apply``: server-side apply (field manager ``mlops-install``), reads, and the waits (CRDs Established,
  Deployments Available, a ConfigMap key set).
- ``cluster``: connect to *the journal's* cluster (Container API ``clusters.get``), refusing any other.
- ``kubeconfig``: ``--write-kubeconfig``: add a context as ``gcloud container clusters get-credentials`` would.

Everything here is blocking; async callers use ``asyncio.to_thread``.
"""
