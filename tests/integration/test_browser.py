"""A real browser through socks5d: headless Chromium (Debian's chromium)
with --proxy-server=socks5://..., loopback not bypassed, loads a page from
a local web server by name (v4only.socks5d.test, from the namespace's
hosts file: Chromium sends names to a SOCKS5 proxy, so the daemon resolves
it), and the page's text and the daemon's session line are checked."""

import http.server
import shutil
import subprocess
import tempfile
import threading
import unittest

from harness import Daemon, finish_daemon, needs_socks5d
import harness

CHROMIUM = shutil.which("chromium")
MARK = "socks5d-browser-page-7f3a"


class PageServer:
    """An HTTP server on 127.0.0.1 serving one HTML page at /."""

    def __init__(self):
        body = f"<html><body><p id=m>{MARK}</p></body></html>".encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@needs_socks5d
@unittest.skipIf(CHROMIUM is None, "chromium is not installed (Debian: chromium)")
class Browser(unittest.TestCase):
    def test_chromium_loads_a_page_through_socks5(self):
        if harness.IS_MICROSOCKS:
            self.skipTest("socks5d only: the session line is checked")
        web = PageServer()
        self.addCleanup(web.close)
        d = Daemon().start()
        self.addCleanup(finish_daemon, d)
        profile = tempfile.mkdtemp(prefix="socks5d-chromium-")
        self.addCleanup(shutil.rmtree, profile, True)
        url = f"http://v4only.socks5d.test:{web.port}/"
        argv = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions",
                f"--user-data-dir={profile}",
                f"--proxy-server=socks5://127.0.0.1:{d.port}",
                # Chromium bypasses the proxy for loopback unless told not to.
                "--proxy-bypass-list=<-loopback>",
                "--dump-dom", url]
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=90)
        self.assertIn(MARK, r.stdout, f"chromium exit {r.returncode}:\n{r.stderr[-3000:]}")
        line = d.wait_log(r"\bsession .*dst=v4only\.socks5d\.test:%d\b" % web.port)
        self.assertIn("cmd=connect", line)
        self.assertIn(f"addr=127.0.0.1:{web.port}", line)
        self.assertIn("rep=0", line)


if __name__ == "__main__":
    unittest.main()
