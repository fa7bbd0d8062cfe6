"""Baselines and peers, installed from the registries by the shared peers-bench harness
(``/work/shared/peers-bench/run.sh install``, pinned versions) into this benchmark's own folder,
and measured here with exactly the method used for lmsauth (``load.measure``).

- limit: raw RS256 signatures/s on the server core (``cryptography``, the project's own venv),
  via peers-bench's ``jwt_sign_bench.py``;
- floor: uvicorn + Starlette answering a constant JSON body (GET) and a parsed form POST;
- oidc-provider (npm): client_credentials -> RS256 JWT, and token introspection;
- django-oauth-toolkit: client_credentials (default hashed secret, and a plain one), and a
  protected resource (``ProtectedResourceView``), under gunicorn with DEBUG off;
- the write grants of both, and oidc-provider's JWT under ES256 and EdDSA: ``peer_grants.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks import peer_grants, procs
from benchmarks.load import BenchError, Request, Result, Settings, measure

PEERS_BENCH = Path(os.environ.get("LMSAUTH_PEERS_BENCH", "/work/shared/peers-bench"))
SECRET = "bench-secret-0123456789"
ROOT = Path(__file__).resolve().parent.parent

DOT_VIEWS = '''"""Added by lmsauth's benchmarks: the protected-resource check of DOT's documentation."""
from django.http import JsonResponse
from oauth2_provider.views.generic import ProtectedResourceView


class Me(ProtectedResourceView):
    def get(self, request, *args, **kwargs):
        return JsonResponse({"id": "bench", "scope": request.resource_owner is None and "client" or "user"})
'''

DOT_URLS = """from django.urls import include, path

from dotproj.bench_views import Me

urlpatterns = [
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("api/me", Me.as_view()),
]
"""


def install(peers: Path, log: Callable[[str], None] = print) -> None:
    """Install the peers once (a stamp file records it); add DOT's protected resource."""
    stamp = peers / ".installed"
    if not stamp.exists():
        log(f"installing peers into {peers} (pip, npm ci, Django project)")
        env = {**os.environ, "PEERS": str(peers)}
        subprocess.run(["bash", str(PEERS_BENCH / "run.sh"), "install"], env=env, check=True, timeout=1800)
        stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    views = peers / "dot" / "dotproj" / "bench_views.py"
    if not views.exists():
        views.write_text(DOT_VIEWS)
        (peers / "dot" / "dotproj" / "urls.py").write_text(DOT_URLS)


def sign_rate(cfg: Settings, out: Path, seconds: float, repeat: int) -> dict[str, Any]:
    """RS256 (and the other algorithms) signatures/s on the server core, project venv."""
    subprocess.run(
        [
            "taskset",
            "-c",
            str(cfg.server_cpu),
            str(ROOT / ".venv" / "bin" / "python"),
            str(PEERS_BENCH / "jwt_sign_bench.py"),
            "--seconds",
            str(seconds),
            "--repeat",
            str(repeat),
            "--json",
            str(out),
        ],
        check=True,
        timeout=600,
        capture_output=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def _post_json(url: str, body: str, auth: str) -> dict[str, Any]:
    import base64

    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        loaded: dict[str, Any] = json.loads(response.read())
        return loaded


def run_peers(
    peers: Path,
    cfg: Settings,
    raw: Path,
    want: Callable[[str], bool],
    dot_cfg: Settings,
    failures: list[str],
) -> dict[str, Result]:
    """Each contender in turn; one that fails is recorded in ``failures`` and the rest go on."""
    results: dict[str, Result] = {}
    venv = peers / "venv" / "bin"

    def run(name: str, server: procs.Server, req: Request, expect: str, c: Settings = cfg) -> None:
        if want(name):
            print(f"== {name}", flush=True)
            try:
                results[name] = measure(name, server, c, raw, lambda rep: req, expect_text=expect)
            except (BenchError, RuntimeError, OSError) as exc:
                failures.append(f"{name}: {exc.__class__.__name__}: {exc}")
                print(f"!! {name}: {exc}", flush=True)

    # ---- floor: the same ASGI server (uvicorn + uvloop + httptools, Starlette) with constant bodies
    if any(want(n) for n in ("asgi-starlette-get", "asgi-starlette-get-lua", "asgi-starlette-post")):
        port = procs.free_port()
        server = procs.start(
            "asgi-starlette",
            [
                str(venv / "uvicorn"),
                "asgi_apps:starlette_app",
                "--app-dir",
                str(PEERS_BENCH),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=peers,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            log_dir=raw,
            cpu=cfg.server_cpu,
        )
        try:
            procs.wait_http(f"http://127.0.0.1:{port}/ping", server)
            run("asgi-starlette-get", server, Request(f"http://127.0.0.1:{port}/ping", plain=True), '"ok"')
            run(  # a check that wrk's Lua path (used for lmsauth) is not the bottleneck: one run
                "asgi-starlette-get-lua",
                server,
                Request(f"http://127.0.0.1:{port}/ping", header="Authorization: Bearer x{T}"),
                '"ok"',
                replace(cfg, reps=1),
            )
            run(
                "asgi-starlette-post",
                server,
                Request(
                    f"http://127.0.0.1:{port}/token",
                    method="POST",
                    body="grant_type=client_credentials&scope=api%3Aread",
                ),
                "access_token",
            )
        except (BenchError, RuntimeError, OSError, KeyError, ValueError) as exc:
            failures.append(f"{server.name}: {exc.__class__.__name__}: {exc}")
            print(f"!! {server.name}: {exc}", flush=True)
        finally:
            procs.stop(server)

    # ---- oidc-provider
    if any(want(n) for n in ("oidc-provider-token-jwt", "oidc-provider-introspect")):
        port = procs.free_port()
        base = f"http://127.0.0.1:{port}"
        server = procs.start(
            "oidc-provider",
            ["node", str(PEERS_BENCH / "oidc_provider_server.mjs")],
            cwd=peers / "node",
            env={
                **os.environ,
                "NODE_ENV": "production",
                "PORT": str(port),
                "CLIENT_ID": "bench-client",
                "CLIENT_SECRET": SECRET,
            },
            log_dir=raw,
            cpu=cfg.server_cpu,
        )
        auth = f"bench-client:{SECRET}"
        try:
            procs.wait_http(f"{base}/.well-known/openid-configuration", server)
            run(
                "oidc-provider-token-jwt",
                server,
                Request(
                    f"{base}/token",
                    method="POST",
                    body="grant_type=client_credentials&resource=https%3A%2F%2Fapi.example&scope=api%3Aread",
                    auth=auth,
                ),
                '"access_token":"eyJ',
            )
            if want("oidc-provider-introspect"):
                opaque = _post_json(f"{base}/token", "grant_type=client_credentials&scope=api%3Aread", auth)
                run(
                    "oidc-provider-introspect",
                    server,
                    Request(
                        f"{base}/token/introspection",
                        method="POST",
                        body=f"token={opaque['access_token']}",
                        auth=auth,
                    ),
                    '"active":true',
                )
        except (BenchError, RuntimeError, OSError, KeyError, ValueError) as exc:
            failures.append(f"{server.name}: {exc.__class__.__name__}: {exc}")
            print(f"!! {server.name}: {exc}", flush=True)
        finally:
            procs.stop(server)

    # ---- django-oauth-toolkit under gunicorn (1 sync worker on the one core), DEBUG off
    if any(want(n) for n in ("dot-resource", "dot-token-plain", "dot-token-hashed")):
        port = procs.free_port()
        base = f"http://127.0.0.1:{port}"
        server = procs.start(
            "dot",
            [
                str(venv / "gunicorn"),
                "dotproj.wsgi",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                "--no-control-socket",
                "--log-level",
                "warning",
            ],
            cwd=peers / "dot",
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            log_dir=raw,
            cpu=cfg.server_cpu,
        )
        try:
            procs.wait_http(f"{base}/o/token/", server)
            body = "grant_type=client_credentials"
            if want("dot-resource"):
                token = _post_json(f"{base}/o/token/", body, f"bench-plain:{SECRET}")["access_token"]
                run(
                    "dot-resource",
                    server,
                    Request(f"{base}/api/me", header=f"Authorization: Bearer {token}"),
                    '"id"',
                )
            run(
                "dot-token-plain",
                server,
                Request(f"{base}/o/token/", method="POST", body=body, auth=f"bench-plain:{SECRET}"),
                "access_token",
            )
            run(
                "dot-token-hashed",
                server,
                Request(f"{base}/o/token/", method="POST", body=body, auth=f"bench-hashed:{SECRET}"),
                "access_token",
                dot_cfg,
            )
        except (BenchError, RuntimeError, OSError, KeyError, ValueError) as exc:
            failures.append(f"{server.name}: {exc.__class__.__name__}: {exc}")
            print(f"!! {server.name}: {exc}", flush=True)
        finally:
            procs.stop(server)
    # ---- the write grants (oidc-provider, DOT) and oidc-provider's JWT per signing algorithm
    results.update(peer_grants.run(peers, cfg, raw, want, failures))
    return results


def versions(peers: Path) -> dict[str, str]:
    """The peers' exact versions (pip and npm, as installed)."""
    out: dict[str, str] = {}
    freeze = subprocess.run(
        [str(peers / "venv" / "bin" / "pip"), "freeze"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    ).stdout
    for line in freeze.splitlines():
        name, _, version = line.partition("==")
        if name.lower() in {"django", "django-oauth-toolkit", "gunicorn", "starlette", "uvicorn", "oauthlib"}:
            out[name] = version
    for package in ("oidc-provider", "jose", "koa"):
        meta = peers / "node" / "node_modules" / package / "package.json"
        if meta.exists():
            out[package] = json.loads(meta.read_text()).get("version", "?")
    return out
