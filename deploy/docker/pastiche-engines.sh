#!/usr/bin/env bash
# The engine step of the GPU target, run inside the Pastiche Triton image (Kubernetes init
# container and Job, compose one-shot service): turns the published ONNX repository into
# TensorRT plans for the GPU it runs on, with the TensorRT of this very image, and fails when
# a plan already in the repository has a manifest naming another TensorRT or GPU.
#
#   pastiche-engines build    build missing plans, refuse mismatched ones (default)
#   pastiche-engines verify   only check that every plan matches this image and GPU
#
# Environment:
#   PASTICHE_ENGINE_REPOSITORY    s3://bucket/prefix/gpu/<Triton tag>: the repository Triton serves
#   PASTICHE_ONNX_REPOSITORY      s3://bucket/prefix/onnx: the published models (build only)
#   PASTICHE_ENGINE_MODELS        optional comma-separated model names (default: all)
#   PASTICHE_ENGINE_TIMING_CACHE  optional TensorRT timing cache file
#   TRTEXEC                       optional path of trtexec (default: the one on PATH)
#   PASTICHE_S3_ENDPOINT_URL, PASTICHE_S3_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
#                                 read by `pastiche engines` itself, as by the gateway
#   PASTICHE_IMAGE_TRITON_TAG     set by the image build; not to be set by hand
set -euo pipefail

die() {
    echo "pastiche-engines: $*" >&2
    exit 2
}

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
}

mode="${1:-build}"
case "$mode" in
    build | verify) ;;
    -h | --help)
        usage
        exit 0
        ;;
    *) die "unknown mode '$mode': expected build or verify" ;;
esac
[[ $# -le 1 ]] || die "unexpected arguments after '$mode': $*"

image_tag="${PASTICHE_IMAGE_TRITON_TAG:-}"
[[ -n "$image_tag" ]] || die "PASTICHE_IMAGE_TRITON_TAG is not set: run this inside the Pastiche Triton image"

repository="${PASTICHE_ENGINE_REPOSITORY:-}"
[[ -n "$repository" ]] || die "PASTICHE_ENGINE_REPOSITORY is not set (the s3:// prefix Triton serves plans from)"
repository="${repository%/}"
# Plans are valid for one TensorRT only: the repository must be the one named for this image.
[[ "${repository##*/}" == "$image_tag" ]] \
    || die "PASTICHE_ENGINE_REPOSITORY '$repository' is not named for this image's Triton tag '$image_tag'"

args=(engines "$mode" --repository "$repository")

if [[ "$mode" == build ]]; then
    source_repository="${PASTICHE_ONNX_REPOSITORY:-}"
    [[ -n "$source_repository" ]] || die "PASTICHE_ONNX_REPOSITORY is not set (the s3:// prefix of the published ONNX models)"
    trtexec="${TRTEXEC:-$(command -v trtexec || true)}"
    [[ -n "$trtexec" && -x "$trtexec" ]] || die "trtexec not found (set TRTEXEC to its path)"
    args+=(--source "${source_repository%/}" --trtexec "$trtexec")
    if [[ -n "${PASTICHE_ENGINE_TIMING_CACHE:-}" ]]; then
        args+=(--timing-cache "$PASTICHE_ENGINE_TIMING_CACHE")
    fi
fi

IFS=',' read -r -a models <<< "${PASTICHE_ENGINE_MODELS:-}"
for model in "${models[@]}"; do
    model="${model// /}"
    [[ -z "$model" ]] || args+=(--model "$model")
done

command -v nvidia-smi > /dev/null || die "nvidia-smi not found: no NVIDIA GPU is visible to this container"
gpu="$(nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader | head -n 1)" \
    || die "nvidia-smi failed: no usable NVIDIA GPU"
[[ -n "$gpu" ]] || die "nvidia-smi lists no GPU"

echo "pastiche-engines: $mode $repository on GPU '$gpu' (Triton $image_tag)" >&2
exec pastiche "${args[@]}"
