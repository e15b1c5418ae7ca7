# tfx-dev: an image to run mlops-install and to work with TFX / Kubeflow Pipelines.
#
#   docker build -f tfx-dev.Dockerfile -t tfx-dev .
#   docker run --rm -it -v "$HOME/.config/gcloud:/home/tfx/.config/gcloud" \
#       -v "$HOME/.local/state/mlops-install:/home/tfx/.local/state/mlops-install" tfx-dev
#
# Pinned: the base image tag, the Google Cloud CLI packages (gcloud, kubectl, gke-gcloud-auth-plugin, all of
# one release from Google's apt repository), kustomize (sha256 of the release archive) and terraform (sha256
# from HashiCorp's SHA256SUMS, whose signature is checked against HashiCorp's key fingerprint).
# tests/installer/test_dockerfile.py checks this file statically (and with hadolint when installed).

FROM python:3.11-slim-bookworm

ARG CLOUD_SDK_VERSION=528.0.0
ARG KUSTOMIZE_VERSION=5.4.3
ARG KUSTOMIZE_SHA256=3669470b454d865c8184d6bce78df05e977c9aea31c30df3c669317d43bcc7a7
ARG TERRAFORM_VERSION=1.11.4
ARG HASHICORP_PGP_FINGERPRINT=C874011F0AB405110D02105534365D9472D7468F

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Base tools (from the base image's Debian release), then Google's apt repository (its key in
# /etc/apt/keyrings) and the Cloud CLI packages of one pinned release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl gnupg git unzip tmux \
    && install -d -m 0755 /etc/apt/keyrings \
    && curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg \
        | gpg --dearmor -o /etc/apt/keyrings/google-cloud-cli.gpg \
    && echo "deb [signed-by=/etc/apt/keyrings/google-cloud-cli.gpg] https://packages.cloud.google.com/apt cloud-sdk main" \
        > /etc/apt/sources.list.d/google-cloud-sdk.list \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        "google-cloud-cli=${CLOUD_SDK_VERSION}-0" \
        "google-cloud-cli-gke-gcloud-auth-plugin=${CLOUD_SDK_VERSION}-0" \
        "kubectl=1:${CLOUD_SDK_VERSION}-0" \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# kustomize: the release archive, checked against its pinned sha256.
RUN curl -fsSLo /tmp/kustomize.tar.gz \
        "https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2Fv${KUSTOMIZE_VERSION}/kustomize_v${KUSTOMIZE_VERSION}_linux_amd64.tar.gz" \
    && echo "${KUSTOMIZE_SHA256}  /tmp/kustomize.tar.gz" | sha256sum -c - \
    && tar -xzf /tmp/kustomize.tar.gz -C /usr/local/bin kustomize \
    && chmod 0755 /usr/local/bin/kustomize \
    && rm -f /tmp/kustomize.tar.gz

# terraform: SHA256SUMS signed by HashiCorp (key checked by fingerprint), then the zip checked against it.
WORKDIR /tmp/terraform
RUN GNUPGHOME="$(mktemp -d)" \
    && export GNUPGHOME \
    && base="https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}" \
    && curl -fsSLO "${base}/terraform_${TERRAFORM_VERSION}_linux_amd64.zip" \
    && curl -fsSLO "${base}/terraform_${TERRAFORM_VERSION}_SHA256SUMS" \
    && curl -fsSLO "${base}/terraform_${TERRAFORM_VERSION}_SHA256SUMS.sig" \
    && curl -fsSL https://www.hashicorp.com/.well-known/pgp-key.txt -o hashicorp.asc \
    && gpg --batch --import hashicorp.asc \
    && gpg --batch --with-colons --fingerprint "${HASHICORP_PGP_FINGERPRINT}" | grep -q "${HASHICORP_PGP_FINGERPRINT}" \
    && gpg --batch --verify "terraform_${TERRAFORM_VERSION}_SHA256SUMS.sig" "terraform_${TERRAFORM_VERSION}_SHA256SUMS" \
    && grep " terraform_${TERRAFORM_VERSION}_linux_amd64.zip\$" "terraform_${TERRAFORM_VERSION}_SHA256SUMS" | sha256sum -c - \
    && unzip -q "terraform_${TERRAFORM_VERSION}_linux_amd64.zip" terraform -d /usr/local/bin \
    && rm -rf /tmp/terraform "${GNUPGHOME}"
WORKDIR /

# A non-root user; the installer in its own virtual environment (PEP 668).
RUN useradd --create-home --uid 1000 --shell /bin/bash tfx \
    && install -d -o tfx -g tfx -m 0755 /opt/mlops-install /etc/mlops-install \
    && touch /etc/mlops-install/tfx-dev

COPY --chown=tfx:tfx pyproject.toml README.md /opt/mlops-install/src/
COPY --chown=tfx:tfx installer /opt/mlops-install/src/installer
COPY --chown=tfx:tfx backends /opt/mlops-install/src/backends
COPY --chown=tfx:tfx screens /opt/mlops-install/src/screens
COPY --chown=tfx:tfx sandbox /opt/mlops-install/src/sandbox
COPY --chown=tfx:tfx examples /opt/mlops-install/src/examples

USER 1000:1000
WORKDIR /home/tfx
RUN python -m venv /opt/mlops-install/venv \
    && /opt/mlops-install/venv/bin/pip install --no-cache-dir /opt/mlops-install/src

# MLOPS_INSTALL_RUNTIME tells the installer where it runs (installer/environment.py).
ENV PATH="/opt/mlops-install/venv/bin:${PATH}" \
    MLOPS_INSTALL_RUNTIME=tfx-dev \
    USE_GKE_GCLOUD_AUTH_PLUGIN=True \
    CLOUDSDK_CORE_DISABLE_PROMPTS=1 \
    CHECKPOINT_DISABLE=1

CMD ["bash", "-l"]
