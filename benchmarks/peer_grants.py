"""The peers of lmsauth's write scenarios and of scenario 1 per signing algorithm, measured with
``load.measure`` as everything else:

- oidc-provider (``oidc_provider_grants.mjs``): ``authorization_code`` (peer of 4) and
  ``refresh_token`` (peer of 5), its default adapter (in memory); and client_credentials → JWT
  signed with ES256 and EdDSA (peers of scenario 1 under those algorithms; the RS256 row is
  peers-bench's own server, ``oidc-provider-token-jwt``);
- django-oauth-toolkit under gunicorn (1 sync worker, SQLite, DEBUG off, as ``peers.py``
  runs it): ``authorization_code`` with PKCE (DOT requires it by default) and ``refresh_token``
  (DOT rotates refresh tokens by default: each is presented once), for a client whose secret
  is stored in plain text (its default hashed secret answers ~4 requests/s whatever the grant).

Codes and refresh tokens are minted before each repetition, as lmsauth's are: oidc-provider's
by a side port of its own process (its adapter is in memory), DOT's by a script run in its
project (``bench_mint.py``, written there).
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from benchmarks import procs
from benchmarks.load import BenchError, Request, Result, Settings, measure

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-0123456789"
REDIRECT_URI = "https://client.example/callback"
VERIFIER = "bench-pkce-verifier-0123456789-0123456789-0123456789"  # 43+ characters (RFC 7636)
OIDC_CREDENTIALS = f"client_id=bench-client&client_secret={SECRET}"
# An upper bound of either peer's rate, to size the codes of one repetition. oidc-provider
# redeemed ~3,400 codes/s on a quiet core (2026-12-04): 1,500 ran out mid-run, which the
# command counts as an error and which halves the peer's figure.
MINT_RATE = 6_000

DOT_MINT = '''"""Added by lmsauth's benchmarks: mint DOT authorization codes or refresh tokens in bulk.

    python bench_mint.py codes|refresh N OUT
"""
import base64
import hashlib
import os
import secrets
import sys
from datetime import timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dotproj.settings")
import django

django.setup()
from django.contrib.auth import get_user_model
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, Grant, RefreshToken

kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
verifier = os.environ["BENCH_VERIFIER"]
user, _ = get_user_model().objects.get_or_create(username="bench")
app, made = Application.objects.get_or_create(
    client_id="bench-code",
    defaults=dict(
        name="bench-code",
        client_secret=os.environ["BENCH_SECRET"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=os.environ["BENCH_REDIRECT_URI"],
        hash_client_secret=False,
        algorithm="",
    ),
)
now = timezone.now()
values = [secrets.token_urlsafe(30) for _ in range(n)]
if kind == "codes":
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    Grant.objects.bulk_create(
        Grant(
            user=user,
            code=code,
            application=app,
            expires=now + timedelta(minutes=10),
            redirect_uri=app.redirect_uris,
            scope="read",
            code_challenge=challenge,
            code_challenge_method="S256",
        )
        for code in values
    )
else:
    expires, scope = now + timedelta(hours=1), "read"
    tokens = AccessToken.objects.bulk_create(
        AccessToken(user=user, application=app, token=secrets.token_urlsafe(30), expires=expires, scope=scope)
        for _ in values
    )
    RefreshToken.objects.bulk_create(
        RefreshToken(user=user, application=app, token=value, access_token=token)
        for value, token in zip(values, tokens)
    )
with open(out, "w") as handle:
    handle.write("\\n".join(values) + "\\n")
'''


def run(
    peers: Path,
    cfg: Settings,
    raw: Path,
    want: Callable[[str], bool],
    failures: list[str],
) -> dict[str, Result]:
    results: dict[str, Result] = {}
    values = peers / "values"
    values.mkdir(exist_ok=True)
    per_rep = int(MINT_RATE * (cfg.warm + cfg.duration + 2)) + 2

    def attempt(name: str, server: procs.Server, make: Callable[[int], Request], expect: str) -> None:
        if not want(name):
            return
        print(f"== {name}", flush=True)
        try:
            results[name] = measure(name, server, cfg, raw, make, expect_text=expect)
        except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
            failures.append(f"{name}: {exc.__class__.__name__}: {exc}")
            print(f"!! {name}: {exc}", flush=True)

    # ---- oidc-provider: the two grants (RS256 server), then client_credentials per algorithm
    for alg in ("RS256", "ES256", "EdDSA"):
        names = (
            ["oidc-provider-code", "oidc-provider-refresh"]
            if alg == "RS256"
            else [f"oidc-provider-token-jwt-{alg.lower()}"]
        )
        if not any(want(n) for n in names):
            continue
        port, admin = procs.free_port(), procs.free_port()
        base = f"http://127.0.0.1:{port}"
        server = procs.start(
            f"oidc-provider-grants-{alg.lower()}",
            ["node", str(HERE / "oidc_provider_grants.mjs")],
            cwd=peers / "node",
            env={
                **os.environ,
                "NODE_ENV": "production",
                "PORT": str(port),
                "ADMIN_PORT": str(admin),
                "CLIENT_ID": "bench-client",
                "CLIENT_SECRET": SECRET,
                "REDIRECT_URI": REDIRECT_URI,
                "SIGN_ALG": alg,
            },
            log_dir=raw,
            cpu=cfg.server_cpu,
        )
        try:
            procs.wait_http(f"{base}/.well-known/openid-configuration", server)

            def minted(kind: str, n: int, rep: int, admin: int = admin) -> Path:
                request = urllib.request.Request(f"http://127.0.0.1:{admin}/{kind}?n={n}", method="POST")
                with urllib.request.urlopen(request, timeout=600) as response:
                    path = values / f"oidc-{kind}.{rep}.txt"
                    path.write_bytes(response.read())
                return path

            if alg == "RS256":
                attempt(
                    "oidc-provider-code",
                    server,
                    lambda rep, base=base: Request(
                        f"{base}/token",
                        method="POST",
                        body=(
                            f"grant_type=authorization_code&{OIDC_CREDENTIALS}"
                            f"&redirect_uri={quote(REDIRECT_URI, safe='')}&code={{T}}"
                        ),
                        values=minted("codes", per_rep, rep),
                        cycle=False,
                    ),
                    '"refresh_token":"',
                )
                # as lmsauth's scenario 5: a thousand refresh tokens presented in turn
                refresh = minted("refresh", 1_000, 0) if want("oidc-provider-refresh") else None
                attempt(
                    "oidc-provider-refresh",
                    server,
                    lambda rep, base=base, refresh=refresh: Request(
                        f"{base}/token",
                        method="POST",
                        body=f"grant_type=refresh_token&{OIDC_CREDENTIALS}&refresh_token={{T}}",
                        values=refresh,
                    ),
                    '"access_token":"',
                )
            else:
                attempt(
                    f"oidc-provider-token-jwt-{alg.lower()}",
                    server,
                    lambda rep, base=base: Request(
                        f"{base}/token",
                        method="POST",
                        body="grant_type=client_credentials&resource=https%3A%2F%2Fapi.example&scope=api%3Aread",
                        auth=f"bench-client:{SECRET}",
                    ),
                    '"access_token":"eyJ',
                )
        except (BenchError, RuntimeError, OSError) as exc:
            failures.append(f"{server.name}: {exc.__class__.__name__}: {exc}")
            print(f"!! {server.name}: {exc}", flush=True)
        finally:
            procs.stop(server)

    # ---- django-oauth-toolkit: the two grants
    if any(want(n) for n in ("dot-code", "dot-refresh")):
        project = peers / "dot"
        (project / "bench_mint.py").write_text(DOT_MINT)
        python = peers / "venv" / "bin" / "python"
        mint_env = {
            **os.environ,
            "PYTHONDONTWRITEBYTECODE": "1",
            "BENCH_SECRET": SECRET,
            "BENCH_VERIFIER": VERIFIER,
            "BENCH_REDIRECT_URI": REDIRECT_URI,
        }

        def dot_minted(kind: str, n: int, rep: int) -> Path:
            path = values / f"dot-{kind}.{rep}.txt"
            subprocess.run(
                [str(python), "bench_mint.py", kind, str(n), str(path)],
                cwd=project,
                env=mint_env,
                check=True,
                timeout=600,
                capture_output=True,
            )
            return path

        port = procs.free_port()
        base = f"http://127.0.0.1:{port}"
        server = procs.start(
            "dot-grants",
            [
                str(peers / "venv" / "bin" / "gunicorn"),
                "dotproj.wsgi",
                "-w",
                "1",
                "-b",
                f"127.0.0.1:{port}",
                "--no-control-socket",
                "--log-level",
                "warning",
            ],
            cwd=project,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            log_dir=raw,
            cpu=cfg.server_cpu,
        )
        credentials = f"client_id=bench-code&client_secret={SECRET}"
        dot_rep = int(MINT_RATE / 16 * (cfg.warm + cfg.duration + 2)) + 2  # DOT: a few hundred/s
        try:
            procs.wait_http(f"{base}/o/token/", server)
            attempt(
                "dot-code",
                server,
                lambda rep: Request(
                    f"{base}/o/token/",
                    method="POST",
                    body=(
                        f"grant_type=authorization_code&{credentials}&code_verifier={VERIFIER}"
                        f"&redirect_uri={quote(REDIRECT_URI, safe='')}&code={{T}}"
                    ),
                    values=dot_minted("codes", dot_rep, rep),
                    cycle=False,
                ),
                '"refresh_token":',
            )
            attempt(
                "dot-refresh",
                server,
                lambda rep: Request(
                    f"{base}/o/token/",
                    method="POST",
                    body=f"grant_type=refresh_token&{credentials}&refresh_token={{T}}",
                    values=dot_minted("refresh", dot_rep, rep),
                    cycle=False,
                ),
                '"access_token":',
            )
        except (BenchError, RuntimeError, OSError, subprocess.SubprocessError) as exc:
            failures.append(f"{server.name}: {exc.__class__.__name__}: {exc}")
            print(f"!! {server.name}: {exc}", flush=True)
        finally:
            procs.stop(server)
    return results
