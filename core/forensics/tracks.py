"""Face-track consistency for videos: how steady each tracked face's box and score are across the
sampled frames. Works on an AnalysisResult or its `to_dict()` form (e.g. from a stored case)."""
from __future__ import annotations

import numpy as np

from core.forensics.flags import flag

__all__ = ["track_summary", "track_flags", "track_rows", "JUMP_LIMIT", "SCORE_SPREAD_LIMIT"]

JUMP_LIMIT = 0.5  # mean centre shift between consecutive samples, in face widths
SCORE_SPREAD_LIMIT = 0.2  # standard deviation of the fused score across a track's frames


def _frames(result: object) -> list[dict]:
    return (result.to_dict() if hasattr(result, "to_dict") else result)["frames"]


def track_summary(result: object) -> list[dict]:
    """Per track: frames seen, time span, box jitter (centre shift in face widths and relative size
    change between consecutive sampled appearances) and fused-score statistics."""
    appearances: dict[int, list[tuple[float, dict]]] = {}
    for frame in _frames(result):
        for face in frame["faces"]:
            if face.get("track") is not None:
                appearances.setdefault(int(face["track"]), []).append((float(frame["time"]), face))
    return [_summarize(track, seen) for track, seen in sorted(appearances.items())]


def _summarize(track: int, seen: list[tuple[float, dict]]) -> dict:
    boxes = np.array([face["box"] for _, face in seen], dtype=np.float64)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    widths = boxes[:, 2]
    shifts = np.hypot(*np.diff(centres, axis=0).T) / np.maximum((widths[1:] + widths[:-1]) / 2, 1.0)
    resizes = np.abs(np.diff(widths)) / np.maximum(widths[:-1], 1.0)
    scores = np.array([face["scores"]["fused"] for _, face in seen if face.get("scores")], dtype=np.float64)
    out = {
        "track": track,
        "frames": len(seen),
        "first_time": round(seen[0][0], 3),
        "last_time": round(seen[-1][0], 3),
        "judged": int(scores.size),
        "centre_shift_mean": _stat(shifts, np.mean),
        "centre_shift_max": _stat(shifts, np.max),
        "size_change_mean": _stat(resizes, np.mean),
        "score_mean": _stat(scores, np.mean),
        "score_std": _stat(scores, np.std),
        "score_var": _stat(scores, np.var),
        "score_max": _stat(scores, np.max),
    }
    out["notes"] = _notes(out)
    return out


def _stat(values: np.ndarray, how) -> float | None:
    return round(float(how(values)), 4) if values.size else None


JUMP_TEXT = "The box jumps between samples: fast motion, a cut, or the tracker mixing two people."
SWING_TEXT = ("The score swings across frames: partial manipulation, occlusion, pose or blur; "
              "look at the highest-scoring frames.")
PEOPLE_NAMED = 8  # a flag names this many people, then says how many more


def _findings(track: dict) -> list[str]:
    """What is worth a flag: a jumping box or a swinging score."""
    found = []
    if (track["centre_shift_mean"] or 0) > JUMP_LIMIT:
        found.append(JUMP_TEXT)
    if track["judged"] >= 3 and (track["score_std"] or 0) > SCORE_SPREAD_LIMIT:
        found.append(SWING_TEXT)
    return found


def _notes(track: dict) -> list[str]:
    single = ["Seen in one sampled frame only: no consistency to measure."] if track["frames"] < 2 else []
    return single + _findings(track)


def _people(tracks: list[dict]) -> str:
    """ "person 2", or "persons 1, 2, … 8 and 3 more" past PEOPLE_NAMED, numbered from 1 as on the pages."""
    numbers = [str(t["track"] + 1) for t in tracks]
    if len(numbers) == 1:
        return f"person {numbers[0]}"
    more = len(numbers) - PEOPLE_NAMED
    return "persons " + ", ".join(numbers[:PEOPLE_NAMED]) + (f" and {more} more" if more > 0 else "")


def _measure(text: str, tracks: list[dict]) -> str:
    if text == JUMP_TEXT:
        worst = max(t["centre_shift_mean"] for t in tracks)
        return f"the box moves {worst:.2f} face widths between samples on average" + (" (the most)" if len(tracks) > 1 else "")
    worst = max(t["score_std"] for t in tracks)
    return f"the score varies by ±{worst:.2f} (standard deviation)" + (" (the most)" if len(tracks) > 1 else "")


def track_flags(tracks: list[dict]) -> list[dict]:
    """Flags for the report: one per kind of finding, naming every person it concerns (a long video
    where the tracker loses a face often would otherwise list the same flag dozens of times)."""
    concerned: dict[str, list[dict]] = {}
    for track in tracks:
        for text in _findings(track):
            concerned.setdefault(text, []).append(track)
    return [flag("track", _people(found), _measure(text, found), text) for text, found in concerned.items()]


def track_rows(tracks: list[dict]) -> list[dict]:
    """One display row per track, people numbered from 1 as on the pages."""
    return [{"person": t["track"] + 1, "frames": t["frames"], "judged": t["judged"],
             "span (s)": f"{t['first_time']:.1f}–{t['last_time']:.1f}", "box shift (face widths)": t["centre_shift_mean"],
             "score mean": t["score_mean"], "score sd": t["score_std"], "score max": t["score_max"],
             "notes": " ".join(t["notes"])} for t in tracks]
