"""Start Flowdesk's web server, a Celery worker and Celery beat; one Ctrl-C stops all three."""

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

PORT = os.environ.get("PORT", "8000")
PYTHON = sys.executable
COMMANDS = {
    "web": [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{PORT}"],
    "worker": [
        PYTHON,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--pool=threads",
        "--concurrency=4",
        "--loglevel=INFO",
    ],
    "beat": [PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel=INFO"],
}
BANNER = f"""
  Flowdesk is running at http://127.0.0.1:{PORT}/

  Demo logins (password for each: flowdesk-demo)
    reviewer    alice       Clinical and Billing teams' queues
    reviewer    bob         Clinical team's queues
    reviewer    maria       Sign-off team: medical director sign-offs, write-off approvals
    supervisor  sam         every queue; reassigns, re-sends
    flow admin  ada         templates, routing and queues in /admin/
    compliance  cora        the audit report: /audit/

  sam and ada set up two-factor sign-in (an authenticator app) the first time they sign in.

  Flows engine API: http://127.0.0.1:{PORT}/flows-api/  (OpenAPI: /flows-api/openapi.json)
  Demo API credentials: demo-sandbox / demo-sandbox-secret, demo-production / demo-production-secret

  Press Ctrl-C once to stop the web server, the worker and beat.
"""
REAL_API_BANNER = f"""
  Flowdesk is running at http://127.0.0.1:{PORT}/

  Flows API: {{api}} (no demo Runs are started there, no demo logins created)
  First login: python manage.py createsuperuser. Connecting to Sohar: docs/sohar.md.

  Press Ctrl-C once to stop the web server, the worker and beat.
"""


def main() -> int:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Decided before FLOWS_API_URL is set below: a URL given by the user is a real Flows API,
    # where `make run` starts no demo Runs (config.settings.FLOWDESK_DEMO).
    demo = env.setdefault("FLOWDESK_DEMO", "0" if env.get("FLOWS_API_URL") else "1") == "1"
    env.setdefault("FLOWS_ENGINE_WEBHOOK_RETRY_SCALE", "0.01")
    env.setdefault("FLOWS_ENGINE_PRODUCT_LATENCY_MS", "300")
    env.setdefault("FLOWS_API_URL", f"http://127.0.0.1:{PORT}/flows-api")
    # Links in notification e-mails (printed on this console: no EMAIL_HOST here).
    env.setdefault("FLOWDESK_BASE_URL", f"http://127.0.0.1:{PORT}")
    children = {
        name: subprocess.Popen(cmd, env=env, start_new_session=True)
        for name, cmd in COMMANDS.items()
    }
    stopping = False
    banner_shown = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    started = time.monotonic()
    while not stopping:
        if not banner_shown and (_answers() or time.monotonic() - started > 60):
            # After the web server answers, so the URL is not lost in the start-up logs.
            print(BANNER if demo else REAL_API_BANNER.format(api=env["FLOWS_API_URL"]), flush=True)
            banner_shown = True
            if demo:
                # A few Runs that pause for staff, on the first start only; in the background,
                # as the engine answers through this same web server.
                subprocess.Popen(
                    [PYTHON, "manage.py", "start_demo_runs", "--if-empty"],
                    env=env,
                    start_new_session=True,
                )
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with code {child.returncode}; stopping the rest.", flush=True)
                exit_code = child.returncode or 1
                stopping = True
        time.sleep(0.3)
    for child in children.values():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
    print("Flowdesk stopped.", flush=True)
    return exit_code


def _answers() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


if __name__ == "__main__":
    sys.exit(main())
