# tpod in one container: the Streamlit app and a Huey worker (`python -m app serve`).
#   docker build -t tpod .                                   # CPU (default)
#   docker build -t tpod:cuda --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#   docker run -p 8501:8501 -v tpod-data:/data tpod          # add --gpus all for the CUDA image
# More workers on other machines: same image, `python -m app worker`, TPOD_REDIS_URL set, /data shared.
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TPOD_DATA_DIR=/data

# ffmpeg libraries for PyAV/OpenCV come in the wheels; curl serves the healthcheck, fonts the UI's emoji.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl fonts-dejavu-core fonts-noto-color-emoji libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 tpod \
    && mkdir -p /data \
    && chown tpod:tpod /data

WORKDIR /app
COPY requirements.txt ./
# ultralytics pulls opencv-python, which shares the cv2/ folder with the contrib build: reinstall
# contrib last so CSRT/KCF/MedianFlow trackers exist (scripts/install.sh does the same).
RUN pip install --no-cache-dir --extra-index-url "${TORCH_INDEX}" -r requirements.txt \
    && pip install --no-cache-dir --force-reinstall --no-deps "$(grep -E '^opencv-contrib-python-headless==' requirements.txt)" \
    && python -c "import cv2; assert hasattr(cv2, 'TrackerCSRT_create')"

COPY --chown=tpod:tpod . .

USER 1000:1000
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["curl", "-fsS", "http://localhost:8501/_stcore/health"]
CMD ["python", "-m", "app", "serve", "--port", "8501", "--address", "0.0.0.0"]
