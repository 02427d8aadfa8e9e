# One image for every tracedrill service in compose.yaml (the target app, the emulators, Locust).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tracedrill ./tracedrill
COPY target_app ./target_app
COPY loadtests ./loadtests
COPY verifiers ./verifiers
COPY emulators ./emulators
RUN pip install --no-cache-dir .
ENTRYPOINT []
