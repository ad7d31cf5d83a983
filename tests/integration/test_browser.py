"""The autoindex page and media in a real headless browser (Debian's chromium
and chromium-driver through selenium), as a person uses them (issue 13).

Set LISTING_SCREENSHOT=docs/listing.png to refresh the screenshot kept in docs/
(``make screenshot``); otherwise it is written under the test's tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from support import ROOT, ours
from uwsgi_gluster import gfapi
from uwsgi_gluster.seeding import write_tree

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DIR = f"/ops-browser-{os.getpid()}"
NAMES = {  # shown name -> bytes
    'a <b> & "q".txt': b"tricky name\n",
    "zz-big.bin": b"z" * 150_000,
    "Ωmega café ✓.txt": b"unicode\n",
    "it's.txt": b"quote\n",
}


def make_mp4(path: Path) -> bytes:
    """A 3 s, 320x240, 10 fps H.264 clip made here, no network (moov first, so
    the browser can seek before it has the whole file)."""
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=duration=3:size=320x240:rate=10", "-pix_fmt", "yuv420p", "-c:v", "libx264",
                    "-g", "10", "-movflags", "+faststart", str(path)], check=True, timeout=120)
    return path.read_bytes()


@pytest.fixture(scope="module")
def site(volumes, tmp_path_factory):
    if not (shutil.which("ffmpeg") and os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail("chromium, chromium-driver and ffmpeg are needed: scripts/gluster-env install")
    work = tmp_path_factory.mktemp("browser")
    fs = volumes["unbit001"]
    clip = make_mp4(work / "clip.mp4")
    tree = {f"{DIR}/{name}": data for name, data in NAMES.items()}
    tree.update({f"{DIR}/sub/inner.txt": b"inside\n", f"{DIR}/clip.mp4": clip,
                 f"{DIR}/player.html": b'<!doctype html><meta charset="utf-8"><title>player</title>'
                                       b'<video id="v" src="clip.mp4" muted playsinline preload="auto"></video>'})
    write_tree(fs, tree)
    ini = ("[uwsgi]\nhttp-socket = 127.0.0.1:{port}\nhttp-socket-modifier1 = 27\nthreads = 8\n"
           "glusterfs-mount = mountpoint=/,volume=unbit001,server=127.0.0.1:0,autoindex=true\n")
    try:
        with ours(ini, work).start() as srv:
            yield srv, len(clip)
    finally:
        for path in tree:
            gfapi.unlink(fs, path)
        for path in (f"{DIR}/sub", DIR):
            gfapi.rmdir(fs, path)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--autoplay-policy=no-user-gesture-required", "--window-size=390,844"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def base(srv) -> str:
    return f"http://127.0.0.1:{srv.port}{DIR}/"


def names_shown(driver):
    return [a.text for a in driver.find_elements(By.CSS_SELECTOR, "td.n a")]


def test_listing_renders_escaped_names_on_a_phone_screen(site, browser, tmp_path):
    srv, _ = site
    browser.get(base(srv))
    assert browser.title == f"Index of {DIR}/"
    shown = names_shown(browser)
    assert shown == ["../", "sub/", 'a <b> & "q".txt', "clip.mp4", "it's.txt", "player.html", "zz-big.bin",
                     "Ωmega café ✓.txt"]
    sizes = {row.find_element(By.CSS_SELECTOR, "td.n a").text: row.find_element(By.CSS_SELECTOR, "td.s").text
             for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert sizes["zz-big.bin"] == "146 KiB" and sizes["it's.txt"] == "6 B"
    # fits a 390 px wide phone: no horizontal scrolling
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    browser.get(base(srv) + "?sort=size&order=desc")
    shot = Path(os.environ.get("LISTING_SCREENSHOT") or tmp_path / "listing.png")
    if not shot.is_absolute():
        shot = ROOT / shot
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 5000


def test_links_navigate_down_up_and_to_a_file(site, browser):
    srv, _ = site
    browser.get(base(srv))
    browser.find_element(By.LINK_TEXT, "sub/").click()
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith(f"{DIR}/sub/"))
    assert names_shown(browser) == ["../", "inner.txt"]
    browser.find_element(By.LINK_TEXT, "../").click()
    WebDriverWait(browser, 30).until(lambda d: d.current_url == base(srv))
    browser.find_element(By.LINK_TEXT, 'a <b> & "q".txt').click()
    WebDriverWait(browser, 30).until(lambda d: "tricky name" in d.page_source)
    assert browser.current_url == base(srv) + "a%20%3Cb%3E%20%26%20%22q%22.txt"


def test_sorting_by_clicking_the_column_headers(site, browser):
    srv, _ = site
    browser.get(base(srv))
    browser.find_element(By.CSS_SELECTOR, "th.s a").click()
    WebDriverWait(browser, 30).until(lambda d: "sort=size" in d.current_url)
    assert browser.current_url.endswith("?sort=size&order=desc")
    files = names_shown(browser)[2:]
    assert files[:2] == ["zz-big.bin", "clip.mp4"] and files[-1] == "it's.txt"
    assert browser.find_element(By.CSS_SELECTOR, "th.s").get_attribute("aria-sort") == "descending"
    browser.find_element(By.CSS_SELECTOR, "th.s a").click()  # the current column: reversed
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith("order=asc"))
    ascending = names_shown(browser)
    assert ascending[:2] == ["../", "sub/"]  # directories first in either order
    assert ascending[2] == "it's.txt" and ascending[-2:] == ["clip.mp4", "zz-big.bin"]
    browser.find_element(By.LINK_TEXT, "sub/").click()  # the order is kept while browsing
    WebDriverWait(browser, 30).until(lambda d: "/sub/" in d.current_url)
    assert browser.current_url.endswith("/sub/?sort=size&order=asc")


def test_mp4_plays_and_seeks_in_a_video_element(site, browser):
    srv, size = site
    browser.get(base(srv) + "player.html")
    state = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const v = document.getElementById('v');
        const fail = (why) => done({error: why, code: v.error && v.error.code});
        v.addEventListener('error', () => fail('error'));
        const start = () => v.play().then(() => {
            const played = () => {
                if (v.currentTime < 0.5) return setTimeout(played, 50);
                const before = v.currentTime;
                v.addEventListener('seeked', () => done({duration: v.duration, before: before,
                    after: v.currentTime, ready: v.readyState, width: v.videoWidth}), {once: true});
                v.currentTime = 2.2;
            };
            played();
        }, (e) => fail(String(e)));
        if (v.readyState >= 1) start(); else v.addEventListener('loadedmetadata', start, {once: true});
    """)
    assert "error" not in state, state
    assert 2.9 < state["duration"] < 3.1 and state["before"] >= 0.5 and state["width"] == 320
    assert abs(state["after"] - 2.2) < 0.2 and state["ready"] >= 2
    # the browser fetched it with Range requests, answered 206
    log = srv.log()
    assert re.search(rf"GET {re.escape(DIR)}/clip\.mp4 => generated \d+ bytes .*HTTP/1\.1 206", log), log[-3000:]
