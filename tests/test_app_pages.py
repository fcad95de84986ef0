"""Every page through streamlit.testing.v1.AppTest: uploads, verdicts, charts, heatmaps, bad input."""
import json
import shutil
from pathlib import Path

import pytest
from conftest import garbage_video
from streamlit.testing.v1 import AppTest

from core.media import Limits
from core.ui import LIMITS_KEY

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
TIMEOUT = 180  # seconds per script run; the first one loads the detector, and CI machines are busy
VERDICTS = ("### REAL", "### FAKE", "### INCONCLUSIVE", "### NO FACE")


def open_page(page: str | None = None, limits: Limits | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if limits is not None:
        at.session_state[LIMITS_KEY] = limits
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception
    return at


def upload(at: AppTest, name: str, content: bytes, mime: str) -> AppTest:
    at.file_uploader[0].set_value((name, content, mime)).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def banners(at: AppTest) -> list[str]:
    return [e.value for kind in (at.success, at.warning, at.error, at.info) for e in kind]


def verdict_texts(at: AppTest) -> list[str]:
    return [text for text in banners(at) if text.startswith(VERDICTS)]


def errors(at: AppTest) -> str:
    return " ".join(e.value for e in at.error)


def plotly_charts(at: AppTest) -> list:
    return at.get("plotly_chart")


# ---------------------------------------------------------------------------------------------- image


def test_image_page_waits_for_an_upload():
    at = open_page()
    assert at.title[0].value == "Analyze image" and len(at.file_uploader) == 1
    assert at.info and not at.error


def test_untrained_weights_are_flagged_and_never_give_a_verdict(tmp_path, monkeypatch, astronaut_jpeg):
    import core.ui.resources
    from core.analyze import load_engine

    weights = tmp_path / "weights"
    shutil.copytree(Path(APP).parent / "weights", weights)
    meta = json.loads((weights / "detector.json").read_text())
    for branch in meta["branches"].values():
        branch["trained"] = False
    (weights / "detector.json").write_text(json.dumps(meta))
    monkeypatch.setattr(core.ui.resources, "get_engine", lambda: load_engine(weights))
    at = upload(open_page(), "astronaut.jpg", astronaut_jpeg, "image/jpeg")
    assert any("UNTRAINED" in w.value for w in at.warning)
    (verdict,) = verdict_texts(at)
    assert verdict.startswith("### INCONCLUSIVE")
    model_card = open_page("pages/model_card.py")
    assert any("UNTRAINED" in e.value for e in model_card.error)


def test_image_upload_shows_verdict_chart_and_heatmaps(engine, astronaut_jpeg):
    at = upload(open_page(), "astronaut.jpg", astronaut_jpeg, "image/jpeg")
    (verdict,) = verdict_texts(at)
    assert not at.error
    assert plotly_charts(at), "per-face score chart"
    captions = [c for img in at.image for c in img.proto.imgs for c in [c.caption]]
    assert any("Grad-CAM" in c for c in captions) and any("crop the model saw" in c for c in captions)
    assert any("1 face found" in c for c in captions)  # the boxed image
    assert engine.detector.trained and not any("UNTRAINED" in w.value for w in at.warning)  # shipped weights are trained
    assert any("SHA-256" in m.value for m in at.markdown)
    steps = list(at.table[0].value["step"])
    assert "scoring faces" in steps and "firmness check (re-framed faces)" in steps and not any(s.endswith("_s") for s in steps)


def test_image_without_faces_shows_whole_image_scores(no_face_png):
    at = upload(open_page(), "shapes.png", no_face_png, "image/png")
    (verdict,) = verdict_texts(at)
    assert verdict.startswith("### NO FACE")
    assert any("whole image" in m.label for m in at.metric)
    assert any("Whole-image scores" in h.value for h in at.subheader)
    shown = " ".join([*(i.value for i in at.info), *(c.value for c in at.caption), *(h.value for h in at.subheader)])
    assert shown.lower().count("no face") == 1  # said once, in the banner


def test_faces_too_small_are_boxed_and_not_scored(astronaut):
    import cv2
    from conftest import encode_image

    small = encode_image(cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA))
    at = upload(open_page(), "small.jpg", small, "image/jpeg")
    (verdict,) = verdict_texts(at)
    assert verdict.startswith("### NO FACE")
    captions = [c.caption for img in at.image for c in img.proto.imgs]
    assert any("too small to judge" in c for c in captions)  # the boxed image
    assert any("Too small to judge" in c.value for c in at.caption) and not plotly_charts(at)


def render_verdict(label: str, score: float | None, confidence: float | None) -> None:
    """AppTest script: the verdict banner of a hand-made result, as trained weights would give it."""
    from core.analyze import AnalysisResult, Verdict
    from core.ui import verdict_section

    verdict = Verdict(label, score, confidence, "blend" if score is not None else None, "reason")
    thresholds = {"real": 0.35, "fake": 0.65}
    verdict_section(AnalysisResult("image", "00", {}, [], verdict, {}, "v", True, thresholds, {}))


@pytest.mark.parametrize("label, score, confidence, element, words", [
    ("FAKE", 0.9, 0.9, "error", "90% confidence in this label (calibrated on photos)"),
    ("REAL", 0.1, 0.9, "success", "90% confidence in this label (calibrated on photos)"),
    ("FAKE", 0.998, 0.998, "error", "over 99% confidence"),  # never "100%": calibration cannot back certainty
    ("REAL", 0.004, 0.996, "success", "over 99% confidence"),
    ("INCONCLUSIVE", 0.55, 0.55, "warning", "manipulation score 0.550, between the REAL and FAKE thresholds (it leans towards FAKE)"),
    ("INCONCLUSIVE", 0.504, 0.504, "warning", "(it leans neither way)"),  # not "towards FAKE" at 0.504
    ("NO FACE", None, None, "info", "NO FACE"),
])
def test_verdict_banner_per_label(label, score, confidence, element, words):
    at = AppTest.from_function(render_verdict, args=(label, score, confidence), default_timeout=TIMEOUT).run()
    assert not at.exception
    (banner,) = getattr(at, element)
    assert banner.value.startswith(f"### {label}") and words in banner.value
    if score is not None:
        assert "face-swap / splice" in banner.value  # which branch drove it
    assert any("never proof" in c.value for c in at.caption)  # limits stated beside the verdict


def test_bad_images_show_an_error_and_the_page_stays_usable(bad_image, astronaut_jpeg):
    name, content, words = bad_image
    at = upload(open_page(), name, content, "image/jpeg")
    assert words in errors(at) and not verdict_texts(at)
    upload(at, "astronaut.jpg", astronaut_jpeg, "image/jpeg")
    assert not at.error and len(verdict_texts(at)) == 1


def test_unexpected_failure_is_logged_not_shown(monkeypatch, caplog, astronaut_jpeg):
    import core.ui.analysis

    def broken(*args, **kwargs):
        raise RuntimeError("internal detail the user must not see")

    monkeypatch.setattr(core.ui.analysis, "analyze_image_bytes", broken)
    at = upload(open_page(), "astronaut.jpg", astronaut_jpeg, "image/jpeg")
    assert "Something unexpected went wrong" in errors(at) and "internal detail" not in errors(at)
    assert "internal detail" in caplog.text  # the traceback is in the server log


def test_upload_over_the_byte_limit(astronaut_jpeg):
    """Streamlit refuses uploads over server.maxUploadSize before our code runs; this checks our
    own byte check with a lowered limit (the default follows server.maxUploadSize)."""
    at = upload(open_page(limits=Limits(max_bytes=10_000)), "astronaut.jpg", astronaut_jpeg, "image/jpeg")
    assert "the limit is" in errors(at)


def test_default_byte_limit_follows_max_upload_size():
    from streamlit import config

    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 7)
    try:
        at = AppTest.from_string(
            "import streamlit as st\nfrom core.ui import current_limits\nst.text(current_limits().max_bytes)",
            default_timeout=TIMEOUT,
        ).run()
    finally:
        config.set_option("server.maxUploadSize", before)
    assert at.text[0].value == str(7 * 1024 * 1024)


def test_config_upload_cap_matches_the_core_default():
    config = (Path(APP).parent / ".streamlit" / "config.toml").read_text()
    megabytes = int(next(line for line in config.splitlines() if line.startswith("maxUploadSize")).split("=")[1])
    assert Limits().max_bytes == megabytes * 1024 * 1024


# ---------------------------------------------------------------------------------------------- video

VIDEO_PAGE = "pages/analyze_video.py"


def test_video_upload_shows_facts_timeline_and_faces(two_face_video):
    at = open_page(VIDEO_PAGE)
    at.slider[0].set_value(8)
    upload(at, "two.mp4", two_face_video, "video/mp4")
    assert not at.error and len(verdict_texts(at)) == 1
    assert "averages over the 8 frames with a judged face" in verdict_texts(at)[0]  # how frames make the verdict
    facts = {m.label: m.value for m in at.metric}
    assert facts["Codec"] == "mpeg4" and facts["Resolution"] == "480 × 240" and facts["Frames sampled"] == "8"
    assert len(plotly_charts(at)) == 2  # timeline + faces of the chosen frame
    heatmaps = [c for img in at.image for c in img.proto.imgs if "Grad-CAM" in c.caption]
    assert len(heatmaps) == 2  # both faces of the chosen frame
    frame_shown = [c.caption for img in at.image for c in img.proto.imgs if c.caption.startswith("Frame ")]
    assert len(frame_shown) == 1 and "2 faces found" in frame_shown[0]  # the inspected frame itself, boxed
    picker = at.select_slider[0]
    assert len(picker.options) == 8

    analysis = at.session_state["video_analysis"]
    picker.set_value(3).run()
    assert not at.exception and at.session_state["video_analysis"] is analysis  # no re-analysis
    assert at.select_slider[0].value == 3

    at.switch_page("pages/model_card.py").run()
    at.switch_page(VIDEO_PAGE).run()  # back: the uploader is empty, the result is drawn again from the session
    assert not at.exception and not at.file_uploader[0].value and len(verdict_texts(at)) == 1
    assert len(plotly_charts(at)) == 2 and at.session_state["video_analysis"] is analysis


def click_on_timeline() -> None:
    """AppTest script: a Plotly click event as Streamlit stores it, passed to the timeline callback."""
    import streamlit as st
    from streamlit.elements.plotly_chart import PlotlySelectionState, PlotlyState

    from core.ui.results import _follow_click

    points = [{"curve_number": 0, "point_index": 5, "x": 1.1, "y": 0.4, "customdata": 5}]
    st.session_state["chart"] = PlotlyState({"selection": PlotlySelectionState({"points": points})})
    _follow_click("chart", "pick")
    st.text(st.session_state["pick"])


def test_a_click_on_the_timeline_picks_that_frame():
    at = AppTest.from_function(click_on_timeline, default_timeout=TIMEOUT).run()
    assert not at.exception and at.text[0].value == "5"


def test_changing_the_frame_count_offers_a_new_analysis(two_face_video):
    at = open_page(VIDEO_PAGE)
    at.slider[0].set_value(8)
    upload(at, "two.mp4", two_face_video, "video/mp4")
    at.slider[0].set_value(10).run()
    (again,) = [b for b in at.button if "Analyze again" in b.label]
    again.click().run()
    assert not at.exception and at.session_state["video_analysis"].result.media["frames_sampled"] == 10


BAD_VIDEOS = {
    "zero-byte": (lambda one, long: b"", None, "empty"),
    "text-renamed": (lambda one, long: b"not a video at all\n" * 30, None, "not an MP4"),
    "one-frame": (lambda one, long: one, None, "fewer than two frames"),
    "unreadable-codec": (lambda one, long: garbage_video(), None, "could not be decoded"),
    "too-long": (lambda one, long: long, Limits(max_video_seconds=1.0), "the limit is"),
    "too-many-bytes": (lambda one, long: long, Limits(max_bytes=1000), "the limit is"),
}


@pytest.mark.parametrize("case", sorted(BAD_VIDEOS))
def test_bad_videos_show_an_error(case, one_frame_video, two_face_video):
    build, limits, words = BAD_VIDEOS[case]
    at = upload(open_page(VIDEO_PAGE, limits), "clip.mp4", build(one_frame_video, two_face_video), "video/mp4")
    assert words in errors(at) and not verdict_texts(at)
    assert not plotly_charts(at)


# ------------------------------------------------------------------------------------------ model card


def test_model_card_page(engine):
    at = open_page("pages/model_card.py")
    assert at.title[0].value == "Model card"
    assert not any(m.value.lstrip("#").strip().startswith("Model card") for m in at.markdown)  # said once
    opened = [e.label for e in at.expander if e.proto.expanded]
    assert any(o.startswith("Measured") for o in opened) and any(o.startswith("Detection") for o in opened)
    assert any(e.label.startswith("What was tried") for e in at.expander if not e.proto.expanded)  # long parts fold
    assert engine.detector.version in " ".join(m.value for m in at.markdown)
    assert engine.detector.trained and not any("UNTRAINED" in e.value for e in at.error)
    text = " ".join(m.value for m in at.markdown)
    assert "never proof" in text and "code is released under the MIT license" in text
    assert "weights are for **research use only**" in text  # their training data's terms, as README and model card say
    assert at.table, "branch table with calibration and trained flags"
    (training,) = [d.value for d in at.dataframe if "setting" in d.value.columns]  # the training record as a table, not raw JSON
    steps = training.set_index("setting").loc["steps"]
    assert [steps[b] for b in engine.detector.configs] == [str(engine.detector.metadata["training"][b]["steps"]) for b in engine.detector.configs]
    assert not at.json
    assert any("overflow-x: auto" in h.proto.body for h in at.get("html"))  # wide report tables scroll in their own box


def test_model_card_documents_are_read_when_present(tmp_path):
    from core.ui import evaluation_report, model_card_text

    assert model_card_text(tmp_path) is None and evaluation_report(tmp_path) is None
    (tmp_path / "eval").mkdir()
    (tmp_path / "MODEL_CARD.md").write_text("# Card")
    (tmp_path / "eval" / "report.md").write_text("# Report")
    assert model_card_text(tmp_path) == "# Card" and evaluation_report(tmp_path) == "# Report"


def test_the_app_hides_error_details_even_without_its_config_file():
    from streamlit import config

    config.set_option("client.showErrorDetails", "full")  # as when started from another folder
    try:
        open_page()
        assert config.get_option("client.showErrorDetails") == "none"
    finally:
        config.set_option("client.showErrorDetails", "none")
