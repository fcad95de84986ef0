"""core.faces: YuNet finds every face, flags small ones, and crops never pad with black."""
import cv2
import numpy as np
import pytest

from core.faces import MIN_FACE_PX, Face, FaceDetector, crop_box, crop_face


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_astronaut_has_one_judgeable_face(detector, astronaut):
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200  # her face, not the suit or the flag
    assert not faces[0].too_small and faces[0].landmarks.shape == (5, 2)


def test_every_face_is_found_largest_first(detector, two_faces):
    faces = detector.detect(two_faces)
    assert len(faces) == 2
    assert faces[0].box[2] * faces[0].box[3] >= faces[1].box[2] * faces[1].box[3]


def test_no_face_image(detector, no_face_rgb):
    assert detector.detect(no_face_rgb) == []


def test_small_faces_are_flagged_too_small(detector, astronaut):
    faces = detector.detect(cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA))
    assert faces and all(f.too_small and f.size < MIN_FACE_PX for f in faces)


def test_crop_at_the_border_is_never_black_padded(detector, astronaut):
    corner = np.ascontiguousarray(astronaut[90:, 200:])  # the face touches the top-left corner
    face = detector.detect(corner)[0]
    x0, y0, _ = crop_box(face)
    assert x0 < 0 or y0 < 0  # the crop window really leaves the image
    crop = crop_face(corner, face, 160)
    assert crop.shape == (160, 160, 3)
    edges = [crop[0], crop[-1], crop[:, 0], crop[:, -1]]
    assert all(edge.max() > 0 for edge in edges)
    assert (crop.reshape(-1, 3).max(axis=1) == 0).mean() < 0.01  # no black band anywhere


def test_crop_of_a_photo_cut_close_around_the_face_shrinks_to_the_image():
    face = Face((-1.0, 2.0, 310.0, 450.0), 0.9, np.zeros((5, 2), np.float32))  # box of a face filling a 338 x 431 photo
    assert crop_box(face)[2] == 585  # 1.3 x 450: mostly replicated edges
    assert crop_box(face, image_shape=(431, 338, 3))[2] == 450  # never below the box itself
    small = Face((300.0, 200.0, 100.0, 120.0), 0.9, np.zeros((5, 2), np.float32))
    assert crop_box(small, image_shape=(1080, 1920, 3)) == crop_box(small)  # room enough: the usual margin
    photo = np.random.default_rng(0).integers(0, 256, (431, 338, 3), dtype=np.uint8)
    fitted, wide = crop_face(photo, face, 160), crop_face(photo, face, 160, fit_image=False)
    replicated = lambda crop: np.mean([np.array_equal(a, b) for a, b in zip(crop[:-1], crop[1:])])  # noqa: E731
    assert replicated(fitted) < replicated(wide)
