"""The bare endpoint `bench_join` measures beside the join: a FastAPI app with only the join's
route, answering a status of the same shape without reading the request, its token or Redis,
served by the same `serve` (uvicorn and its options) as every service.

    python -m loadtest.bare_endpoint --port 8100
"""

import argparse

import orjson
from fastapi import FastAPI, Response

STATUS = {"type": "position", "position": 1, "ahead": 0, "behind": 0, "eta_seconds": 0}


def create_app() -> FastAPI:
    app = FastAPI(title="bare endpoint")

    @app.post("/sales/{event_id}/queue")
    async def join(event_id: str) -> Response:
        return Response(orjson.dumps(STATUS), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b"{}", media_type="application/json")

    return app


def main(argv: list[str] | None = None) -> None:
    from ticketing.__main__ import serve

    parser = argparse.ArgumentParser(prog="python -m loadtest.bare_endpoint")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(create_app, args.host, args.port)


if __name__ == "__main__":
    main()
