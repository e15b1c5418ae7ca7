"""The pipeline ``kfp-verify`` runs at the end of an install: one lightweight component writes an output artifact
to the pipeline root, a second one reads it back. Proves that a run's tasks start as ``pipeline-runner``, that the
launcher's config (``kfp-launcher`` ConfigMap: ``defaultPipelineRoot``) is complete and that the artifact store
can be written and read.

This file is the DSL source; the installer ships the compiled spec ``verify.yaml`` beside it (the ``kfp`` SDK pins
``kubernetes<31`` and cannot be a runtime dependency). Regenerate it after a change with::

    make verify-pipeline      # a throw-away venv with kfp 2.14.x, then: python backends/kfp/pipelines/verify.py

Not imported by the installer.
"""
from kfp import compiler, dsl

PIPELINE_NAME = "mlops-install-verify"


@dsl.component(base_image="python:3.11-slim")
def write_artifact(message: str, out: dsl.Output[dsl.Artifact]):
    with open(out.path, "w") as f:
        f.write(message)


@dsl.component(base_image="python:3.11-slim")
def read_artifact(message: str, src: dsl.Input[dsl.Artifact]):
    with open(src.path) as f:
        text = f.read()
    if text != message:
        raise ValueError(f"read {text!r}, expected {message!r}")
    print(f"read back: {text}")


@dsl.pipeline(name=PIPELINE_NAME, description="mlops-install: write an artifact to the pipeline root, read it back")
def verify(message: str = "mlops-install verification"):
    w = write_artifact(message=message).set_caching_options(False)
    read_artifact(message=message, src=w.outputs["out"]).set_caching_options(False)


if __name__ == "__main__":
    import pathlib

    compiler.Compiler().compile(verify, str(pathlib.Path(__file__).with_name("verify.yaml")))
