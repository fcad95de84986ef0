"""The app as a person uses it: a real `streamlit run`, Debian's Chromium, uploads through the file input.

Run alone with `pytest tests/e2e -q`; screenshots land in test-artifacts/screenshots/.
"""
from __future__ import annotations

import re
from pathlib import Path

from conftest import encode_image, garbage_video

from .conftest import screenshot, wait_idle

try:  # without Playwright the fixtures skip (CI: fail) with the install hint
    from playwright.sync_api import Locator, Page, expect
except ImportError:
    Locator = Page = expect = None

# every page must be reachable from the sidebar
PAGES = ("Analyze image", "Analyze video", "Cases", "Batch upload", "Model card")
VERDICT = re.compile(r"^\s*(REAL|FAKE|INCONCLUSIVE|NO FACE)\b")


def expect_page(page: Page, title: str) -> None:
    """The page's title is shown and its script has finished running."""
    expect(page.get_by_role("heading", name=title, level=1, exact=True)).to_be_visible()
    wait_idle(page)


def nav_links(page: Page) -> Locator:
    return page.locator('[data-testid="stSidebarNav"] a')


def open_app(page: Page, title: str = "Analyze image") -> None:
    """Open the home page, then go to `title` through the sidebar, as a person does."""
    page.goto("/")
    expect_page(page, "Analyze image")
    if title != "Analyze image":
        nav_links(page).filter(has_text=title).first.click()
        expect_page(page, title)


def upload(page: Page, path: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(path)


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def verdict_banners(page: Page) -> Locator:
    return page.locator('[data-testid="stAlert"] h3').filter(has_text=VERDICT)


def verdict(page: Page) -> Locator:
    """The verdict banner: an alert whose heading is one of the four labels."""
    banner = verdict_banners(page)
    expect(banner).to_have_count(1)
    return banner


def plotly_charts(page: Page, count: int) -> Locator:
    """Wait until `count` Plotly charts have drawn their SVG."""
    charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg:first-child')
    expect(charts).to_have_count(count)
    return charts


def expect_image_loaded(image: Locator) -> None:
    expect(image).to_be_visible()
    image.scroll_into_view_if_needed()
    image.page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())


def image_by_caption(page: Page, caption: str) -> Locator:
    """The first `st.image` whose caption contains `caption`."""
    return page.locator('[data-testid="stImage"]').filter(has_text=caption).locator("img").first


def lower_half(page: Page, name: str) -> None:
    """A second screenshot from the forensic section down, then back to the top for the test's own."""
    wait_idle(page)
    to_top(page.get_by_role("heading", name="Forensic context"))
    screenshot(page, name)
    to_top(page.get_by_role("heading", level=1))


def to_top(element: Locator) -> None:
    """Scroll `element` to the top of the viewport (Streamlit scrolls its main block, not the window)."""
    element.evaluate("e => e.scrollIntoView({block: 'start'})")


def test_app_opens_on_the_image_page(page: Page):
    open_app(page)
    expect(page.locator('[data-testid="stFileUploaderDropzoneInput"]')).to_have_count(1)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text("Detector")
    expect(page.get_by_text("evidence for a human reviewer, never proof").first).to_be_visible()


def test_sidebar_reaches_every_page(page: Page):
    open_app(page)
    links = nav_links(page)
    names = [text.strip().splitlines()[-1] for text in links.all_inner_texts()]  # after the icon's name
    assert set(PAGES) <= set(names), f"sidebar links: {names}"
    for name in names:
        links.filter(has_text=name).first.click()
        expect_page(page, name)
        screenshot(page, f"page_{name}")


def test_a_page_link_opened_first_after_a_restart_gets_the_apps_menu_and_sidebar(restarted_page: Page):
    # With a pages/ folder Streamlit ran such a link's page file alone until someone opened "/" (streamlit#9624).
    restarted_page.goto("/cases?case=1")
    expect_page(restarted_page, "Cases")
    names = [text.strip().splitlines()[-1] for text in nav_links(restarted_page).all_inner_texts()]
    assert set(PAGES) <= set(names), f"sidebar links: {names}"
    expect(restarted_page.get_by_label("Analyst name", exact=True)).to_be_visible()
    assert restarted_page.url.endswith("/cases?case=1")


def test_image_upload_shows_verdict_chart_and_heatmap(page: Page, tmp_path, astronaut_jpeg):
    open_app(page)
    upload(page, write(tmp_path, "astronaut.jpg", astronaut_jpeg))
    verdict(page)
    plotly_charts(page, 1)
    expect_image_loaded(image_by_caption(page, "found; boxes coloured"))
    expect_image_loaded(image_by_caption(page, "Grad-CAM"))
    expect(page.get_by_text("SHA-256")).to_be_visible()
    lower_half(page, "image_page_lower")


def watch_for(page: Page, testid: str) -> None:
    """Record in the page whether an element with `testid` is ever attached, however briefly: a fast
    analysis can add and remove its progress bar between two of Playwright's polls."""
    page.evaluate("""testid => {
        window.__seen = window.__seen || {};
        new MutationObserver(() => {
            if (document.querySelector(`[data-testid="${testid}"]`)) window.__seen[testid] = true;
        }).observe(document.body, {childList: true, subtree: true});
    }""", testid)


def was_seen(page: Page, testid: str) -> bool:
    return page.evaluate("testid => Boolean(window.__seen && window.__seen[testid])", testid)


def test_video_upload_shows_progress_then_timeline(page: Page, tmp_path, two_face_video):
    open_app(page, "Analyze video")
    frames = page.locator('[data-testid="stSlider"]').filter(has_text="Frames to sample")
    expect(frames.locator('[data-testid="stSliderThumbValue"]')).to_have_text("32")  # the default
    watch_for(page, "stProgress")
    upload(page, write(tmp_path, "two-faces.mp4", two_face_video))
    verdict(page)
    assert was_seen(page, "stProgress"), "no progress bar was shown while the video was analyzed"
    expect(page.locator('[data-testid="stProgress"]')).to_have_count(0)  # gone once the result is there
    charts = plotly_charts(page, 2)  # the timeline, then the chosen frame's faces
    expect(charts.first).to_be_visible()
    expect(page.get_by_text("Inspect frame")).to_be_visible()
    expect_image_loaded(image_by_caption(page, "Grad-CAM"))
    lower_half(page, "video_page_lower")


def test_corrupt_image_gives_a_message(page: Page, tmp_path, astronaut_jpeg):
    open_app(page)
    upload(page, write(tmp_path, "cut.jpg", astronaut_jpeg[: len(astronaut_jpeg) // 2]))
    expect(page.locator('[data-testid="stAlert"]').filter(has_text="truncated")).to_be_visible()
    expect(verdict_banners(page)).to_have_count(0)


def test_undecodable_video_gives_a_message(page: Page, tmp_path):
    open_app(page, "Analyze video")
    upload(page, write(tmp_path, "garbage.mkv", garbage_video()))
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="could not be decoded")
    expect(alert).to_be_visible()
    expect(verdict_banners(page)).to_have_count(0)


# ---------------------------------------------------------------------------------------------- cases
ANALYST = "E2E Tester"


def test_the_analyst_name_survives_a_reload(page: Page):
    open_app(page)
    name = page.get_by_role("textbox", name="Analyst name")
    name.fill("Dana </b> Ö")
    name.press("Enter")
    page.wait_for_function("document.cookie.includes('_analyst=Dana')")  # the run that stores it is done
    page.goto("/cases")  # a typed address is a new session, as a reload is
    expect_page(page, "Cases")
    expect(page.get_by_role("textbox", name="Analyst name")).to_have_value("Dana </b> Ö")


def save_case(page: Page, path: Path) -> int:
    """Analyze `path` with an analyst name in the sidebar (auto-save is on by default); the case number."""
    open_app(page)
    name = page.get_by_role("textbox", name="Analyst name")
    name.fill(ANALYST)
    name.press("Enter")
    wait_idle(page)
    upload(page, path)
    verdict(page)
    saved = page.locator('[data-testid="stAlert"]').filter(has_text=re.compile(r"Saved as case #\d+"))
    expect(saved).to_be_visible()
    # The sections below the notice are still being drawn: leaving now would interrupt the run, and the
    # browser would then ask for images of the interrupted run that Streamlit already dropped (404s).
    wait_idle(page)
    return int(re.search(r"#(\d+)", saved.inner_text()).group(1))


def open_case(page: Page, case_id: int) -> None:
    """Follow the analyze page's link to the case."""
    page.locator('[data-testid="stPageLink"] a').filter(has_text=f"Open case #{case_id}").click()
    expect_page(page, "Cases")
    expect(page.get_by_role("heading", name=f"Case #{case_id}", level=2)).to_be_visible()
    wait_idle(page)


def test_label_a_case_and_find_it_on_the_cases_page(page: Page, tmp_path, astronaut_jpeg):
    case_id = save_case(page, write(tmp_path, "label-me.jpg", astronaut_jpeg))
    open_case(page, case_id)
    form = page.locator(".st-key-label-form")
    form.locator('[data-testid="stRadio"]').get_by_text("disagree", exact=True).click()
    form.locator('[data-testid="stSelectbox"]').filter(has_text="Final verdict").click()
    page.get_by_role("option", name="FAKE", exact=True).click()
    form.get_by_role("button", name="Save label").click()
    expect(page.get_by_text(f"Last labelled by {ANALYST}")).to_be_visible()
    expect(page.get_by_text("The analyst disagrees with the model.")).to_be_visible()

    nav_links(page).filter(has_text="Cases").first.click()  # the list, as a colleague opens it later
    expect_page(page, "Cases")
    page.get_by_text("Only cases where the analyst disagrees with the model").click()
    wait_idle(page)
    search = page.get_by_role("textbox", name="Search")
    search.fill("label-me")
    search.press("Enter")
    expect(page.get_by_text("1 case(s) match")).to_be_visible()
    row = page.locator('[data-testid="stDataFrame"] [role="row"]').filter(has_text="label-me.jpg")
    expect(row).to_have_count(1)
    cells = row.locator('[role="gridcell"]').all_text_contents()  # the grid's accessible copy of the canvas
    assert {str(case_id), "FAKE", "disagree", "true", ANALYST} <= set(cells), cells
    wait_idle(page)

    page.goto(f"/cases?case={case_id}")  # the case's own link, as shared with a colleague
    expect_page(page, "Cases")
    expect(page.get_by_role("heading", name=f"Case #{case_id}", level=2)).to_be_visible()
    expect(page.get_by_text(f"Last labelled by {ANALYST}")).to_be_visible()


def test_export_an_html_report_and_open_it(page: Page, tmp_path, two_faces):
    case_id = save_case(page, write(tmp_path, "two-faces.png", encode_image(two_faces, "PNG")))
    label = verdict(page).inner_text().strip()
    open_case(page, case_id)
    button = page.locator('[data-testid="stDownloadButton"]').filter(has_text="HTML report").filter(visible=True)
    expect(button).to_have_count(1)  # the case's own; the list's export sits in a closed expander
    with page.expect_download() as download:
        button.click()
    report = tmp_path / download.value.suggested_filename
    download.value.save_as(report)
    assert report.name == f"case-{case_id}.html"
    buttons = page.locator('[data-testid="stDownloadButton"]').filter(visible=True)
    for name in ("JSON", "CSV"):  # back to back: a click no longer reruns the page, so no link goes stale
        with page.expect_download() as download:
            buttons.filter(has_text=name).first.click()
        assert download.value.suggested_filename == f"case-{case_id}.{name.lower()}"

    tab = page.context.new_page()  # console errors of the report fail the test too (listener on the context)
    tab.goto(report.as_uri())
    expect(tab.get_by_text("two-faces.png").first).to_be_visible()
    expect(tab.get_by_text(f"Model: {label}", exact=True).first).to_be_visible()
    expect(tab.get_by_text("SHA-256").first).to_be_visible()
    screenshot(tab, "exported_report")
    tab.close()


def test_j_and_k_step_through_the_listed_cases_but_not_while_typing(page: Page, tmp_path, two_faces):
    older, newer = two_faces.copy(), two_faces.copy()
    older[0, 0], newer[0, 0] = (1, 2, 3), (4, 5, 6)  # files of their own, so each becomes a new case
    first = save_case(page, write(tmp_path, "queue-older.png", encode_image(older, "PNG")))
    second = save_case(page, write(tmp_path, "queue-newer.png", encode_image(newer, "PNG")))
    page.goto(f"/cases?case={second}")  # the list is newest first: the older one comes next
    expect(page.get_by_role("heading", name=f"Case #{second}", level=2)).to_be_visible()
    wait_idle(page)
    page.keyboard.press("j")
    expect(page.get_by_role("heading", name=f"Case #{first}", level=2)).to_be_visible()
    wait_idle(page)
    selected = page.locator('[data-testid="stDataFrame"] [role="row"][aria-selected="true"]')
    expect(selected).to_have_count(1)
    expect(selected).to_contain_text("queue-older.png")  # the table's tick follows the open case
    note = page.get_by_role("textbox", name="New note")
    note.fill("checked it")
    note.press("k")  # a letter typed into a note stays in the note
    wait_idle(page)
    expect(note).to_have_value("checked itk")
    expect(page.get_by_role("heading", name=f"Case #{first}", level=2)).to_be_visible()
    note.blur()
    page.locator(".st-key-label-form").get_by_text("disagree", exact=True).click()  # a label choice, not saved
    wait_idle(page)
    page.locator("h1").first.click()  # the focus leaves the form, as an analyst's next key press would find it
    page.keyboard.press("k")
    expect(page.get_by_role("heading", name=f"Case #{second}", level=2)).to_be_visible()
    expect(page.get_by_text(f"Not saved yet: label on #{first}; note on #{first}.")).to_be_visible()
    wait_idle(page)
    page.keyboard.press("j")  # back: the unsaved choice and the note are still there
    expect(page.get_by_role("heading", name=f"Case #{first}", level=2)).to_be_visible()
    wait_idle(page)
    expect(page.locator(".st-key-label-form").get_by_role("radio", name="disagree")).to_be_checked()
    expect(page.get_by_role("textbox", name="New note")).to_have_value("checked itk")
