"""Words the pages and sections share: limits, storage, heatmap help, and escaping of untrusted text."""
from __future__ import annotations

import re

__all__ = [
    "FAMILY_TEXT", "UNTRAINED_TEXT", "LIMITS_TEXT", "STORAGE_TEXT", "ETHICS_TEXT", "HEATMAP_HELP", "OUTSIDE_TEXT", "STORE_TROUBLE",
    "plain",
]

FAMILY_TEXT = {
    "blend": "face-swap / splice evidence (blending boundaries)",
    "synthetic": "fully synthetic face evidence (GAN / diffusion traces)",
}
UNTRAINED_TEXT = (
    "**The shipped detector weights are UNTRAINED placeholders.** Every score on this page is meaningless "
    "and is not a finding; verdicts stay INCONCLUSIVE until trained weights are installed."
)
LIMITS_TEXT = (
    "**Limits.** A score is evidence for a human reviewer, never proof. The detector judges faces only: "
    "heavy re-compression, small or profile faces, screen recordings, and generators unlike its training "
    "data can fool it either way; manipulations outside faces (background, audio, context) are not examined."
)
STORAGE_TEXT = (
    "The file itself is not stored unless you choose to keep it; with case saving on and your name in the "
    "sidebar, the scores, a thumbnail and the most suspicious face crops are saved as a case."
)
ETHICS_TEXT = (
    "A score is evidence for a human reviewer, never proof. Do not publish, moderate or accuse on the score "
    "alone: corroborate with provenance, the source, and other forensic checks. Uploaded files are analyzed "
    "in memory. " + STORAGE_TEXT
)
# All a user sees of a database error: its text holds the SQL and its parameters (file names).
STORE_TROUBLE = "the case store reported an error (the details are in the server log)"
OUTSIDE_TEXT = ("The crop runs past the picture's edge: the model saw the edge repeated there, hatched grey on the "
                "heatmap; heat under the hatching is no evidence.")
HEATMAP_HELP = (
    "How to read the heatmap: red marks the regions whose features most raised this branch's "
    "'manipulated' score (Grad-CAM on the last feature map, so it is coarse). It shows where the evidence "
    "lies, not that a region was edited; on a face scored as real it is weak evidence of anything."
)

# "=" too: a line of them under text makes a heading; ":" and "@" keep a pasted address from becoming a
# link (an autolinked URL keeps the backslashes in it) and ":red[...]"-style directives from applying.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$=:@])")


def plain(text: object, lines: bool = False) -> str:
    """Text from a user or a file, escaped for st.markdown (no links, images or formatting). Line
    breaks become spaces, or with `lines` (an analyst's note) hard breaks; either way no blank line
    starts a new block and no indent makes a code block."""
    rows = [_MARKDOWN.sub(r"\\\1", row.strip()) for row in str(text).splitlines()]
    return ("  \n" if lines else " ").join(row for row in rows if row)
