#!/usr/bin/env python3
"""The IIS console in a real browser: headless Chromium (Debian's chromium and
chromium-driver) drives the page at /console/ of a child `iisbulk serve`.

1. A reviewer logs in, opens the possible-duplicate queue, filters it by the
   Authorized User that sent the waiting records, merges one pair
   (a button) and keeps another apart (the keyboard: `d`); the registry then
   shows both decisions, and the audit trail has them.
2. An administrator logs in with a TOTP code, onboards an Authorized User and
   registers a SMART client for it while VXUs keep flowing from another
   thread; the new clinic's first child appears in its Group on the page and
   is removed from there; the new client gets a token.

Every page the tests open is checked for form fields without a label, and the
page is used at 1280x800. Screenshots go to the artefacts folder.

    check_console_browser.py IISBULK_BINARY ARTEFACTS_DIR

Exit status 0 when every check passed; 2 when chromium or chromedriver is
missing (scripts/test decides whether that is a failure).
"""

import base64
import hashlib
import hmac
import http.cookiejar
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

CHROMIUM = os.environ.get("IISBULK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("IISBULK_CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "a long console passphrase"
DEMO_LOGIN = ("demo", "demo-password-1")
WAIT = 20


def fail(message):
    print(f"check_console_browser.py: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


# --- the IIS under test ---------------------------------------------------------


def run(binary, *args, stdin=None):
    done = subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        fail(f"iisbulk {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def add_staff(binary, data, username, role):
    out = run(
        binary, "staff", "add", "--data-dir", data, "--username", username,
        "--role", role, "--password-stdin", stdin=PASSWORD + "\n",
    )
    match = re.search(r"secret=([A-Z2-7]+)", out)
    return match.group(1) if match else None


def totp(secret, at=None):
    """RFC 6238 (SHA-1, 30 s, 6 digits), as the console's enrolment URI says."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


class Server:
    def __init__(self, binary, data):
        self.process = subprocess.Popen(
            [binary, "serve", "--demo", "--data-dir", data, "--bind", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        deadline = time.time() + 60
        self.url = None
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            match = re.match(r"iisbulk listening on (http://\S+)", line)
            if match:
                self.url = match.group(1)
                break
        if not self.url:
            self.stop()
            fail("iisbulk serve did not say where it listens")
        # Keep reading stdout so the server never blocks on a full pipe.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def post_hl7(url, message, login=DEMO_LOGIN):
    token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode()
    request = urllib.request.Request(
        url + "/hl7", data=message.encode(), method="POST",
        headers={"Content-Type": "application/hl7-v2", "Authorization": "Basic " + token},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        text = answer.read().decode()
    match = re.search(r"MSA\|([A-Z]{2})", text)
    return match.group(1) if match else "?"


def vxu(facility, control, mrn, family, given, sex, dob, house=12, mother="Moreau"):
    return (
        f"MSH|^~\\&|EHR|{facility}|IIS|IIS|20251001120000-0500||VXU^V04^VXU_V04|{control}|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS|{facility}|IIS\r"
        f"PID|1||{mrn}^^^{facility}^MR||{family}^{given}^^^^^L|{mother}^^^^^^M|{dob}|{sex}|||{house} Elm Street^^Springfield^IL^62704^USA^P||^PRN^PH^^^217^555{house:04d}\r"
        f"NK1|1|{family}^Claire^^^^^L|MTH^Mother^HL70063\r"
        f"ORC|RE||{control}-1^{facility}\rRXA|0|1|{dob}||08^HepB^CVX|999|||01^Historical information^NIP001|||||||||||CP|A\r"
    )


class ApiClient:
    """The console API as a script sees it (cookie session, CSRF header)."""

    def __init__(self, url, username, code=None):
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        body = {"username": username, "password": PASSWORD}
        if code:
            body["code"] = code
        self.csrf = self.call("POST", "/session", body)["csrf_token"]

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + "/console/api" + path, data=data, method=method,
            headers={"Content-Type": "application/json", "X-CSRF-Token": getattr(self, "csrf", "")},
        )
        try:
            with self.opener.open(request, timeout=30) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as e:
            fail(f"{method} {path}: HTTP {e.code} {e.read().decode()[:300]}")
        return json.loads(text) if text else None


# --- the browser -------------------------------------------------------------------


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="iisbulk-chromium-")
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--window-size=1280,800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_window_size(1280, 800)
    return driver, profile


class Page:
    def __init__(self, driver, url, artefacts, name):
        self.driver = driver
        self.url = url
        self.artefacts = artefacts
        self.name = name
        self.shots = 0

    def find(self, css):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, WAIT).until(
                ec.visibility_of_element_located((By.CSS_SELECTOR, css))
            )
        except Exception:
            self.screenshot("failure")
            fail(f"{self.name}: no visible '{css}' on {self.driver.current_url}; status: {self.status()!r}")

    def wait_for(self, what, predicate):
        deadline = time.time() + WAIT
        while time.time() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        self.screenshot("failure")
        fail(f"{self.name}: {what} (status: {self.status()!r})")

    def status(self):
        return self.driver.execute_script("return document.getElementById('status').textContent")

    def screenshot(self, label):
        self.shots += 1
        path = os.path.join(self.artefacts, f"{self.name}-{self.shots:02d}-{label}.png")
        self.driver.save_screenshot(path)
        return path

    def unlabelled_fields(self):
        """Form fields a screen reader cannot name (no label, no aria-label)."""
        return self.driver.execute_script(
            """
            return [...document.querySelectorAll('input, select, textarea')]
              .filter((f) => f.type !== 'hidden')
              .filter((f) => !(f.labels && f.labels.length) && !f.getAttribute('aria-label'))
              .map((f) => f.name || f.id || f.outerHTML.slice(0, 60));
            """
        )

    def check_labels(self):
        missing = self.unlabelled_fields()
        if missing:
            self.screenshot("unlabelled")
            fail(f"{self.name}: form fields without a label on {self.driver.current_url}: {missing}")

    def fits_the_screen(self):
        width = self.driver.execute_script("return document.documentElement.scrollWidth")
        if width > 1280:
            self.screenshot("too-wide")
            fail(f"{self.name}: the page is {width}px wide at 1280x800 ({self.driver.current_url})")

    def login(self, username, code=None):
        self.driver.get(self.url + "/console/")
        self.find("#login")
        self.check_labels()
        self.find("#f-username").send_keys(username)
        self.find("#f-password").send_keys(PASSWORD)
        if code:
            self.find("#f-one-time-code").send_keys(code)
        self.find("#login button[type=submit]").click()
        self.find("#who:not([hidden])")


# --- 1. the reviewer ---------------------------------------------------------------


def possible_pairs(url, n):
    """n newborn pairs (a birth hospital's placeholder name, then the clinic's
    named child): each leaves a provisional person beside a known one."""
    for i in range(n):
        family, mother, house = [("Whitcombe", "Moreau", 12), ("Arbeloa", "Lindgren", 481), ("Marchetti", "Osei", 7)][i]
        dob = f"2025{3 + 2 * i:02d}{9 + 7 * i:02d}"
        for facility, mrn, given in (("DEMOGEN", f"BT{i}", "Katherine"), ("DEMOHOSP", f"BH{i}", "Baby Girl")):
            code = post_hl7(url, vxu(facility, f"BT{i}{facility}", mrn, family, given, "F", dob, house, mother))
            if code not in ("AA", "AE"):
                fail(f"a test VXU was refused ({code})")


def reviewer_test(url, artefacts):
    possible_pairs(url, 2)
    api = ApiClient(url, "rita")
    deadline = time.time() + 60
    queue = []
    while time.time() < deadline:
        queue = api.call("GET", "/review?limit=500")["queue"]
        if len(queue) >= 2:
            break
        time.sleep(0.5)
    if len(queue) < 2:
        fail(f"the test pairs did not reach the review queue ({len(queue)} waiting)")
    def family(person):
        return person["demographics"]["name"]["value"]["family"]

    # Each test pair waits beside its own family's named child.
    ours = [item for item in queue
            if family(item["person"]) in ("Whitcombe", "Arbeloa")
            and family(item["candidates"][0]["person"]) == family(item["person"])]
    if len(ours) != 2:
        fail(f"the test pairs are not each beside their named child: {[family(i['person']) for i in queue]}")
    merge, keep = ours

    driver, profile = browser()
    page = Page(driver, url, artefacts, "reviewer")
    try:
        page.login("rita")
        page.find("#queue")
        page.check_labels()
        page.fits_the_screen()
        page.screenshot("queue")

        # Filter by the Authorized User that sent the waiting records: the
        # server searches the whole queue and counts what waits.
        from selenium.webdriver.support.ui import Select

        sender = merge["sources"][0]["authorized_user"]
        waiting = api.call("GET", "/review?limit=1&au=" + urllib.parse.quote(sender))["waiting"]
        Select(page.find("#review-filter")).select_by_value(sender)
        page.wait_for(
            f"the queue filtered by {sender} says {waiting} waiting",
            lambda: page.driver.execute_script(
                "return (document.querySelector('main h2') || {}).textContent || ''"
            ).startswith(f"Possible duplicates: {waiting} waiting"),
        )
        shown = page.driver.execute_script(
            "return [...document.querySelectorAll('#queue button[data-person]')].map((b) => b.dataset.person)"
        )
        for item in (merge, keep):
            if item["person"]["id"] not in shown:
                fail(f"the queue filtered by {sender} lacks {item['person']['id']}: {shown}")
        page.screenshot("queue-filtered")

        # Merge the first pair with the button beside its candidate.
        page.find(f'#queue button[data-person="{merge["person"]["id"]}"]').click()
        into = merge["candidates"][0]["person"]["id"]
        page.find("#comparison")
        page.find("#decision-reason").send_keys("same birth hospital record")
        page.screenshot("pair-with-evidence")
        page.find(f'button[data-decision="same-person"][data-into="{into}"]').click()
        page.wait_for("the merge is confirmed", lambda: page.status().startswith("Merged"))

        # Keep the second pair apart from the keyboard alone.
        from selenium.webdriver.common.action_chains import ActionChains

        page.find(f'#queue button[data-person="{keep["person"]["id"]}"]').click()
        page.find("#comparison")
        ActionChains(driver).send_keys("d").perform()
        page.wait_for("the keep-apart is confirmed", lambda: page.status().startswith("Kept"))
        page.screenshot("after-decisions")

        # The person page of the merged-into person: its sources and history.
        driver.get(url + "/console/#/persons/" + into)
        page.find("#history")
        page.check_labels()
        page.fits_the_screen()
        page.screenshot("person-page")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

    merged = api.call("GET", "/persons/" + merge["person"]["id"])["person"]
    if merged["status"] != "merged" or merged.get("merged_into") != into:
        fail(f"the merged pair is not merged in the registry: {merged['status']} {merged.get('merged_into')}")
    kept = api.call("GET", "/persons/" + keep["person"]["id"])["person"]
    if kept["status"] != "active":
        fail(f"the kept-apart person is {kept['status']}, not active")
    left = {item["person"]["id"] for item in api.call("GET", "/review?limit=500")["queue"]}
    if merge["person"]["id"] in left or keep["person"]["id"] in left:
        fail("a decided person is still in the queue")
    auditor = ApiClient(url, "olu")
    actions = {e["action"] for e in auditor.call("GET", "/audit?actor=staff/rita")["events"]}
    for action in ("console.login", "console.review.merge", "console.review.keep-apart"):
        if action not in actions:
            fail(f"the audit trail lacks {action}: {sorted(actions)}")
    print("reviewer: merged one pair from the page, kept one apart by keyboard; registry and audit agree")


# --- 2. the administrator -------------------------------------------------------------


class Traffic(threading.Thread):
    """VXUs keep flowing from the demo clinic while the administrator works."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.accepted = 0
        self.other = []

    def run(self):
        i = 0
        while not self.stop.is_set():
            code = post_hl7(self.url, vxu("DEMOGEN", f"FLOW{i:05d}", f"FL{i:05d}", "Flowers",
                                          ["Ava", "Liam", "Mia", "Noah"][i % 4] + chr(65 + i % 26),
                                          "F", f"20{10 + i % 10}0{1 + i % 9}1{i % 10}"))
            if code == "AA":
                self.accepted += 1
            else:
                self.other.append(code)
            i += 1


def administrator_test(binary, url, secret, artefacts, workdir):
    # The clinic's own key pair (cryptography comes with moto in the venv).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = os.path.join(workdir, "clinic-key.pem")
    with open(key, "wb") as f:
        f.write(ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    jwks = run(binary, "jwks", "--key", key, "--kid", "clinic-key-1")

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    traffic = Traffic(url)
    traffic.start()
    driver, profile = browser()
    page = Page(driver, url, artefacts, "administrator")
    try:
        # A code from the next 30-second step is refused once used; wait for a
        # fresh step when the current one is about to end.
        if 30 - time.time() % 30 < 3:
            time.sleep(3)
        page.login("ada", totp(secret))
        driver.get(url + "/console/#/authorized-users")
        page.find("#add-authorized-user")
        page.check_labels()
        page.fits_the_screen()
        page.find("#f-id").send_keys("northside-peds")
        page.find("#f-kind").send_keys("clinic")
        page.find("#f-name").send_keys("Northside Pediatrics")
        page.find("#f-facilities").send_keys("NORTHSIDE")
        page.find("#f-hl7-username").send_keys("northside")
        page.find("#f-hl7-password").send_keys("northside password 1")
        page.find("#add-authorized-user button[type=submit]").click()
        page.wait_for("the Authorized User is added", lambda: page.status().startswith("Added northside-peds"))
        page.find('#authorized-users tr[data-id="northside-peds"] a').click()
        page.find("#add-client")
        page.check_labels()
        page.find("#f-public-keys-jwks").send_keys(jwks)
        page.find("#add-client button[type=submit]").click()
        page.wait_for("the client is registered", lambda: page.status().startswith("Registered client"))
        row = page.find("#clients tbody tr")
        client_id = row.get_attribute("data-id")
        page.fits_the_screen()
        page.screenshot("clinic-and-client")

        # The flow stops here: the matcher and membership catch up on it in
        # order, and the clinic's child comes after.
        traffic.stop.set()
        traffic.join(timeout=30)

        # The clinic's first child joins its Group; the administrator sees
        # why, and removes the member (a prompt asks why).
        code = post_hl7(url, vxu("NORTHSIDE", "NS0001", "NS1", "Quinn", "Harper", "F", "20240101", 77, "Ito"),
                        login=("northside", "northside password 1"))
        if code != "AA":
            fail(f"the new clinic's first VXU was answered {code}")
        deadline = time.time() + 180
        while not driver.find_elements(By.CSS_SELECTOR, "#group-members tbody tr[data-person]"):
            if time.time() > deadline:
                page.screenshot("failure")
                fail("the clinic's child never appeared in its Group on the page")
            time.sleep(1)
            driver.refresh()
            page.find("#group-section h3")
        page.screenshot("group-with-member")
        page.find("#group-members tbody tr[data-person] button.danger").click()
        WebDriverWait(driver, WAIT).until(ec.alert_is_present())
        prompt = driver.switch_to.alert
        prompt.send_keys("moved out of state")
        prompt.accept()
        page.wait_for("the member is removed", lambda: "left Group" in page.status())
        page.find("#group-section h3")
        page.wait_for("the Group is empty", lambda: ": 0 member(s)" in page.find("#group-section h3").text)

        # The clinic opens a second site: the administrator adds its facility.
        page.find("#edit-section summary").click()
        page.check_labels()
        page.find("#f-add-facilities").send_keys("NORTHSIDE-2")
        page.find("#edit-authorized-user button[type=submit]").click()
        page.wait_for("the edit is saved", lambda: page.status().startswith("Saved the changes"))
        # The ingest keeps a verified login (with its facilities) for up to
        # a minute (README), so the new site is accepted within that minute.
        deadline = time.time() + 90
        while True:
            code = post_hl7(url, vxu("NORTHSIDE-2", "NS2-0001", "NS2", "Quinn", "Rowan", "M", "20240202", 78, "Ito"),
                            login=("northside", "northside password 1"))
            if code == "AA":
                break
            if code != "AR" or time.time() > deadline:
                fail(f"the new site's VXU was answered {code}")
            time.sleep(5)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        traffic.stop.set()
        traffic.join(timeout=30)

    if traffic.other or traffic.accepted == 0:
        fail(f"VXUs did not keep flowing: {traffic.accepted} accepted, others {traffic.other[:5]}")
    token = json.loads(run(binary, "token", "--url", url, "--client-id", client_id, "--key", key, "--kid", "clinic-key-1"))
    if not token.get("access_token"):
        fail(f"the new client got no token: {token}")
    print(f"administrator: onboarded a clinic and its client from the page while {traffic.accepted} VXUs were accepted; "
          "the clinic's child joined its Group and was removed from the page; its second site was added; the client gets a token")


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 64
    binary, artefacts = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    for tool in (CHROMIUM, CHROMEDRIVER):
        if not os.access(tool, os.X_OK):
            print(f"check_console_browser.py: {tool} is missing (apt-get install chromium chromium-driver)",
                  file=sys.stderr)
            return 2
    os.makedirs(artefacts, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="iisbulk-console-")
    data = os.path.join(workdir, "data")
    try:
        add_staff(binary, data, "rita", "reviewer")
        add_staff(binary, data, "olu", "auditor")
        secret = add_staff(binary, data, "ada", "administrator")
        if not secret:
            fail("no TOTP secret printed for the administrator")
        server = Server(binary, data)
        try:
            reviewer_test(server.url, artefacts)
            administrator_test(binary, server.url, secret, artefacts, workdir)
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    shots = sorted(f for f in os.listdir(artefacts) if f.endswith(".png"))
    print(f"check_console_browser.py: 2 browser tests passed, 0 failed; {len(shots)} screenshots in {artefacts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
