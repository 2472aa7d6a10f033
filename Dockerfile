FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY adapters ./adapters
COPY contracts ./contracts
RUN pip install --no-cache-dir . && useradd --system hub && mkdir /data && chown hub /data
USER hub
ENV HUB_DATA_DIR=/data HUB_CONTRACTS_DIR=/app/contracts HUB_HOST=0.0.0.0
EXPOSE 8080
CMD ["wib-hub", "serve"]
