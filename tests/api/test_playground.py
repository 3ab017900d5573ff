"""The playground page, driven in real headless Chromium against a real server."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqdream_devkit.images import decode, png_bytes
from support.servers import LocalServer

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("SEQDREAM_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (CI installs Debian's chromium)"),
]
ARTIFACTS = Path(os.environ.get("SEQDREAM_TEST_ARTIFACTS", "test-artifacts"))


def wait_until(page, expression: str, timeout: float = 30_000) -> None:  # type: ignore[no-untyped-def]
    """Poll `expression` with page.evaluate: Playwright's wait_for_function evaluates strings with
    eval, which the pages' Content-Security-Policy (rightly) forbids."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout / 1000:.0f}s: {expression}")
        page.wait_for_timeout(50)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, server: LocalServer):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(server.base_url + "/")
    page.fill("#api-key", server.api_key)
    page.dispatch_event("#api-key", "change")
    yield page
    context.close()


def test_group_with_a_reference_then_download(page, server: LocalServer, tmp_path: Path) -> None:
    reference = tmp_path / "reference.png"
    reference.write_bytes(png_bytes((160, 120), "crimson"))
    assert page.url.endswith("/playground/")
    page.set_input_files("#file-input", str(reference))
    page.wait_for_selector("#refs li.ready")
    page.fill("#prompt", "A series of 2 images of this red card, first on a table then in a hand")
    page.fill("#max-images", "4")
    page.dispatch_event("#max-images", "input")
    page.click("#dice")
    assert 0 <= int(page.input_value("#seed")) <= 2147483647
    page.fill("#seed", "77")
    page.dispatch_event("#seed", "input")
    curl = page.text_content("#curl")
    assert '"max_images": 4' in curl and '"seed": 77' in curl and "/api/v3/media/files/" in curl

    page.evaluate("""() => {
        window.seenStatuses = [];
        new MutationObserver(() => window.seenStatuses.push(document.querySelector('#status').textContent))
            .observe(document.querySelector('#status'), {childList: true, characterData: true, subtree: true});
    }""")
    page.click("#submit")
    page.wait_for_selector("#status.completed", timeout=60_000)
    seen = page.evaluate("window.seenStatuses")
    assert seen[0] in ("created", "processing") and seen[-1] == "completed"  # live status, then the result
    images = page.locator("#gallery figure img")
    assert images.count() == 2
    assert page.text_content("#meta-seed") == "77"
    assert page.text_content("#meta-nsfw") == "none detected"
    assert float(page.text_content("#elapsed").split()[0]) >= 0
    wait_until(page, "[...document.querySelectorAll('#gallery img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.evaluate("document.querySelector('#gallery img').naturalWidth") == 2048

    with page.expect_download() as download_info:
        page.locator("#gallery a.download").first.click()
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.name == "seqdream-77-1.jpeg" and decode(saved.read_bytes()).size == (2048, 2048)

    page.wait_for_selector("#history li")
    assert "red card" in page.text_content("#history li p")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-group.png"), full_page=True)


def test_bad_size_shows_the_api_message(page) -> None:
    page.fill("#prompt", "a cat")
    page.select_option("#size-preset", "custom")
    page.fill("#width", "500")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    message = page.text_content("#error")
    assert "size: width 500 is outside 1024-4096" in message
    assert page.is_hidden("#status-line") and page.is_hidden("#meta")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-error.png"))


def test_missing_key_shows_401_message(page) -> None:
    page.fill("#api-key", "")
    page.fill("#prompt", "a cat")
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "API key" in page.text_content("#error")


def test_removing_a_reference(page, tmp_path: Path) -> None:
    files = []
    for index, colour in enumerate(("navy", "olive")):
        path = tmp_path / f"ref{index}.png"
        path.write_bytes(png_bytes((100, 100), colour))
        files.append(str(path))
    page.set_input_files("#file-input", files)
    wait_until(page, "document.querySelectorAll('#refs li.ready').length === 2")
    assert page.text_content("#refs-count") == "2 / 10"
    page.click("#refs li button >> nth=0")
    assert page.locator("#refs li").count() == 1 and page.text_content("#refs-count") == "1 / 10"


def test_drag_and_drop_adds_a_reference(page) -> None:
    page.evaluate("""async () => {
        const canvas = Object.assign(document.createElement('canvas'), {width: 80, height: 80});
        canvas.getContext('2d').fillRect(0, 0, 80, 80);
        const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
        const transfer = new DataTransfer();
        transfer.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
        const drop = new DragEvent('drop', {dataTransfer: transfer, bubbles: true});
        document.querySelector('#dropzone').dispatchEvent(drop);
    }""")
    page.wait_for_selector("#refs li.ready")
    assert page.get_attribute("#refs li img", "alt") == "dropped.png"


def test_a_model_without_examples_keeps_the_generic_placeholder(page) -> None:
    page.wait_for_load_state("networkidle")
    assert page.is_hidden("#examples")
    assert "paper boat" in page.get_attribute("#prompt", "placeholder")


@pytest.fixture(scope="module")
def builtin_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    server = LocalServer(tmp_path_factory.mktemp("builtin-playground"), None).start()  # the built-in model
    yield server
    server.stop()


def open_playground(browser, server: LocalServer, height: int = 1100):  # type: ignore[no-untyped-def]
    """A fresh page of the playground at 1280 wide, the server's key entered."""
    context = browser.new_context(viewport={"width": 1280, "height": height})
    page = context.new_page()
    page.goto(server.base_url + "/")
    page.fill("#api-key", server.api_key)
    page.dispatch_event("#api-key", "change")
    return context, page


def test_built_in_model_examples_fill_the_form_and_run(browser, builtin_server: LocalServer) -> None:
    context, page = open_playground(browser, builtin_server)
    page.wait_for_selector("#examples:not([hidden])")
    placeholder = page.get_attribute("#prompt", "placeholder")
    assert "background" in placeholder and "paper boat" not in placeholder  # the built-in world's words
    assert "circles, squares, triangles" in page.text_content("#examples-about")
    assert 'edit     := ("add" | "draw") object' in page.text_content("#grammar-text")  # the wordings
    buttons = page.locator("#example-list button")
    assert buttons.count() >= 8
    assert not buttons.first.is_visible()  # collapsed until asked for
    page.click("#examples > summary")

    buttons.filter(has_text="image 2").first.click()  # the composition example: two reference images
    wait_until(page, "document.querySelectorAll('#refs li.ready').length === 2")
    assert page.input_value("#model") == "bytedance/seedream-v4/edit"
    assert page.input_value("#prompt") == "put the objects from image 1 on the background of image 2"
    assert "/api/v3/media/files/" in page.text_content("#curl")
    page.click("#submit")
    page.wait_for_selector("#status.completed", timeout=60_000)
    assert page.locator("#gallery figure img").count() == 1

    buttons.filter(has_text="moving from left to right").first.click()
    assert page.input_value("#model") == "bytedance/seedream-v4/sequential"
    assert page.input_value("#max-images") == "14" and page.locator("#refs li").count() == 0
    page.click("#submit")  # the gallery empties at once, then fills with the new group
    wait_until(page, "document.querySelectorAll('#gallery figure img').length === 14", timeout=90_000)
    assert page.text_content("#status") == "completed"
    wait_until(page, "[...document.querySelectorAll('#gallery img')].every(i => i.complete && i.naturalWidth > 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-builtin-examples.png"), full_page=True)
    context.close()


@pytest.fixture(scope="module")
def paced_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One image per batch at a slower pace, so a group visibly arrives image by image."""
    env = {"SEQDREAM_MAX_BATCH": "1", "SEQDREAM_NATIVE_RESOLUTION": "128", "SEQDREAM_NUM_INFERENCE_STEPS": "40"}
    process = LocalServer(tmp_path_factory.mktemp("paced"), tiny_model, **env).start()
    yield process
    process.stop()


@pytest.fixture()
def paced_page(browser, paced_server: LocalServer):
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.goto(paced_server.base_url + "/")
    page.fill("#api-key", paced_server.api_key)
    page.dispatch_event("#api-key", "change")
    page.select_option("#model", "bytedance/seedream-v4/sequential")
    page.select_option("#size-preset", "1024*1024")
    yield page
    context.close()


def test_a_group_appears_image_by_image_under_a_progress_bar(paced_page) -> None:
    page = paced_page
    page.fill("#prompt", "a series of 5 images of a comet crossing the sky")
    page.fill("#max-images", "5")
    page.dispatch_event("#max-images", "input")
    page.evaluate("""() => {
        window.whileRunning = [];
        window.progressSeen = [];
        new MutationObserver(() => {
            if (document.querySelector('#status').textContent === 'processing')
                window.whileRunning.push(document.querySelectorAll('#gallery figure').length);
        }).observe(document.querySelector('#gallery'), {childList: true});
        new MutationObserver(() => window.progressSeen.push([document.querySelector('#progress-text').textContent,
                                                            document.querySelector('#progress').value]))
            .observe(document.querySelector('#progress-text'), {childList: true, characterData: true, subtree: true});
    }""")
    for run in range(2):  # the second run's model, size and count were measured: it also says the time left
        page.click("#submit")
        wait_until(page, "['created', 'processing'].includes(document.querySelector('#status').textContent)")
        if run == 1:
            wait_until(page, "document.querySelector('#progress-text').textContent.includes('left')")
            wait_until(
                page,
                "!document.querySelector('#preview').hidden && document.querySelector('#preview').naturalWidth > 0",
            )
            assert page.evaluate("document.querySelector('#preview').src").startswith("data:image/png;base64,")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "playground-progress.png"))
        page.wait_for_selector("#status.completed", timeout=120_000)
        counts = page.evaluate("window.whileRunning")
        assert counts and counts == sorted(counts) and 1 <= counts[0] < 5  # images arrived while it ran
        assert page.locator("#gallery figure img").count() == 5
        seen = page.evaluate("window.progressSeen")
        texts, values = [text for text, _ in seen], [value for _, value in seen]
        assert any(re.match(r"image \d of 5 · step \d+ of 40", text) for text in texts), texts
        assert values == sorted(values) and 0 < values[-1] <= 1  # the bar only moves forward
        assert (run == 1) == any("s left" in text for text in texts), texts
        assert not page.is_visible("#progress-line")  # ended: the gallery says the rest
        assert not page.is_visible("#preview")
        page.evaluate("() => { window.whileRunning = []; window.progressSeen = []; }")


def test_cancel_deletes_the_running_task(paced_page, paced_server: LocalServer) -> None:
    page = paced_page
    page.fill("#prompt", "a series of 14 images of a comet")
    page.fill("#max-images", "14")
    page.dispatch_event("#max-images", "input")
    page.click("#submit")
    page.wait_for_selector("#gallery figure", timeout=120_000)
    assert page.is_visible("#cancel")
    page.click("#cancel")
    page.wait_for_selector("#status.deleted", timeout=30_000)
    assert page.locator("#gallery figure").count() == 0 and not page.is_visible("#cancel")
    task_id = page.text_content("#task-id")
    with paced_server.client() as api:
        assert api.get(f"/api/v3/predictions/{task_id}/result").json()["data"]["status"] == "deleted"


@pytest.mark.parametrize(
    ("path", "ready"),
    [("/playground/", "#submit"), ("/docs", ".swagger-ui .info .title"), ("/redoc", "redoc .api-content h1")],
)
def test_pages_work_under_their_content_security_policy(browser, server: LocalServer, path: str, ready: str) -> None:
    """The strict policy blocks nothing the pages need: they render, and Chromium reports no violation
    but for third-party loads (the pages work offline)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None,
    )
    response = page.goto(server.base_url + path)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(ready, timeout=30_000)
    page.wait_for_timeout(500)  # late scripts (workers, fonts) report their violations too
    context.close()
    # ReDoc's bundle asks for its logo from its CDN: blocking third-party loads is the policy's job.
    own = [text for text in violations if not re.search(r"'https://(?!127\.0\.0\.1)", text)]
    assert own == []


def test_an_injected_inline_script_does_not_run(browser, server: LocalServer) -> None:
    """What the policy is for: a script added to the page from outside is blocked."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.base_url + "/playground/")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.pwned = 1';
                             document.body.appendChild(s); }""")
    assert page.evaluate("window.pwned === undefined")
    context.close()


def _in_view(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]


def test_generate_status_and_errors_are_in_view_together_at_1280x720(browser, builtin_server: LocalServer) -> None:
    """On a laptop screen the Generate button, the status and any error are visible at the same time,
    with the examples open or closed and wherever the form is scrolled."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    page.goto(builtin_server.base_url + "/")
    page.wait_for_selector("#examples:not([hidden])")
    assert _in_view(page, "#submit")
    page.fill("#prompt", "a large red circle in the center on a blue background")
    page.click("#submit")  # no key yet
    page.wait_for_selector("#error:not([hidden])")
    assert "API key" in page.text_content("#error")
    assert _in_view(page, "#error") and _in_view(page, "#submit")

    page.click("#examples > summary")  # a long list opens above the button
    page.locator("#example-list button").filter(has_text="moving from left to right").first.click()
    page.mouse.wheel(0, 3000)
    wait_until(page, "window.scrollY > 0")
    assert _in_view(page, "#submit")
    page.fill("#api-key", builtin_server.api_key)
    page.click("#submit")
    page.wait_for_selector("#status.completed", timeout=60_000)
    assert _in_view(page, "#status") and _in_view(page, "#submit")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-1280x720.png"))
    context.close()


def test_a_prompt_outside_the_models_words_shows_which_words(browser, builtin_server: LocalServer) -> None:
    context, page = open_playground(browser, builtin_server, height=720)
    page.fill("#prompt", "a photo of a cat")
    page.click("#submit")
    page.wait_for_selector("#status.completed", timeout=60_000)
    page.wait_for_selector("#warnings:not([hidden])")
    text = page.text_content("#warnings")
    assert '"photo"' in text and '"cat"' in text and "/api/v3/examples" in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground-unknown-words.png"))
    page.fill("#prompt", "a large red circle in the center on a blue background")  # inside: no warning
    page.click("#submit")
    wait_until(page, "document.querySelector('#warnings').hidden === true", timeout=60_000)
    context.close()


def test_a_model_that_cannot_be_loaded_is_said_on_the_page(browser, tmp_path: Path) -> None:
    """Tasks wait in the queue while the model cannot be loaded: the page says so, and why."""
    broken = LocalServer(tmp_path / "data", tmp_path / "no-model-here").start(engine=("unavailable",))
    try:
        context, page = open_playground(browser, broken)
        wait_until(page, "document.querySelector('#engine-notice').textContent.includes('could not be loaded')")
        text = page.text_content("#engine-notice")
        assert "tasks wait in the queue" in text and f"'{tmp_path / 'no-model-here'}': no such folder" in text, text
        assert page.is_visible("#engine-notice")
        page.fill("#prompt", "a red circle")  # a task still queues, and says from its first poll that it waits
        page.click("#submit")
        wait_until(page, "document.querySelector('#warnings').textContent.includes('waits in the queue')")
        assert page.is_visible("#warnings") and "no-model-here" not in page.text_content("#warnings")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "playground-model-not-loaded.png"))
        context.close()
    finally:
        broken.stop()


def test_max_images_follows_the_count_the_prompt_asks_for(page) -> None:
    page.select_option("#model", "bytedance/seedream-v4/sequential")
    page.fill("#prompt", "a series of 4 images of a small red circle moving from left to right")
    assert page.input_value("#max-images") == "4" and page.text_content("#max-images-value") == "4"
    assert page.is_visible("#max-images-note")  # it says where the number came from
    assert '"max_images": 4' in page.text_content("#curl")
    page.fill("#prompt", "six frames of a green square growing")
    assert page.input_value("#max-images") == "6"
    page.fill("#max-images", "2")  # the user's own choice wins from then on
    page.dispatch_event("#max-images", "input")
    page.fill("#prompt", "a series of 9 images of a blue cross moving")
    assert page.input_value("#max-images") == "2" and not page.is_visible("#max-images-note")
