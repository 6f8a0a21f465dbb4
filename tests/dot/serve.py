#!/usr/bin/env python
"""Runs the conformance Django OAuth Toolkit server on 127.0.0.1.

    target/dot-venv/bin/python tests/dot/serve.py [--port 0] [--lifetime 3600] [--data-dir DIR] [--issuer URL]
        [--exit-on-stdin-eof]

It migrates a fresh sqlite database in --data-dir (a new temporary directory, removed on exit, when
not given), creates the fixed user and applications (conformance/seed.py), then serves with a
threaded WSGI server and prints one line, `tokensmith-dot listening on http://127.0.0.1:PORT`, once
it accepts connections. With --exit-on-stdin-eof it exits as soon as its standard input closes, so
a test process that spawned it with a pipe cannot leave it behind, however the test process ends.
"""

import sys

# Keep the repository clean: no __pycache__ next to the conformance project.
sys.dont_write_bytecode = True

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import socketserver  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--lifetime", type=int, default=3600, help="ACCESS_TOKEN_EXPIRE_SECONDS")
    parser.add_argument("--data-dir", help="where the sqlite database goes (default: a temporary directory)")
    parser.add_argument(
        "--issuer", help="OIDC_ISS_ENDPOINT: the issuer the metadata names (default: derived from each request)"
    )
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help="exit when standard input closes")
    args = parser.parse_args()

    owned_dir = None
    data_dir = args.data_dir
    if data_dir is None:
        data_dir = owned_dir = tempfile.mkdtemp(prefix="tokensmith-dot-")
    os.makedirs(data_dir, exist_ok=True)

    def finish(code):
        if owned_dir is not None:
            shutil.rmtree(owned_dir, ignore_errors=True)
        sys.stdout.flush()
        os._exit(code)

    if args.exit_on_stdin_eof:

        def watch_stdin():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            finally:
                finish(0)

        threading.Thread(target=watch_stdin, name="stdin-watchdog", daemon=True).start()

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ["DJANGO_SETTINGS_MODULE"] = "conformance.settings"
    os.environ["DOT_DB_PATH"] = os.path.join(data_dir, "db.sqlite3")
    os.environ["DOT_ACCESS_TOKEN_LIFETIME"] = str(args.lifetime)
    if args.issuer:
        os.environ["DOT_ISSUER"] = args.issuer

    import django

    django.setup()

    from django.core.management import call_command
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer, get_internal_wsgi_application

    from conformance.seed import seed

    call_command("migrate", verbosity=0, interactive=False)
    seed()

    class ThreadedServer(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

    server = ThreadedServer(("127.0.0.1", args.port), QuietHandler, ipv6=False)
    server.set_app(get_internal_wsgi_application())
    port = server.server_address[1]
    # The device grant's verification URIs name this server, so they are set once its port is known.
    from oauth2_provider.settings import oauth2_settings

    oauth2_settings.OAUTH_DEVICE_VERIFICATION_URI = f"http://127.0.0.1:{port}/o/device/"
    oauth2_settings.OAUTH_DEVICE_VERIFICATION_URI_COMPLETE = f"http://127.0.0.1:{port}/o/device/?user_code={{user_code}}"
    print(f"tokensmith-dot listening on http://127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        finish(0)


if __name__ == "__main__":
    main()
