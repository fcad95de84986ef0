"""Documents embedded in a page (model card, evaluation report) nest their headings under the page's."""
from core.ui import nested_headings, split_sections

DOC = "# Card\n\nText with a # sign.\n\n## Training\n\n```bash\n# a shell comment, not a heading\n```\n### Deep"


def test_headings_move_down_and_code_stays():
    lines = nested_headings(DOC, 2).splitlines()
    assert lines[0] == "### Card" and "#### Training" in lines and "##### Deep" in lines
    assert "# a shell comment, not a heading" in lines and "Text with a # sign." in lines


def test_never_past_the_sixth_level():
    assert nested_headings("##### Five", 3) == "###### Five"


def test_depth_zero_changes_nothing():
    assert nested_headings(DOC, 0) == DOC


def test_sections_split_at_second_level_headings_outside_code():
    intro, sections = split_sections(DOC + "\n\n## Limits\nSmall faces.")
    assert intro == "Text with a # sign."  # the "# Card" title is left to the page
    assert [h for h, _ in sections] == ["Training", "Limits"]
    assert "# a shell comment, not a heading" in sections[0][1] and "### Deep" in sections[0][1]
    assert sections[1][1] == "Small faces."


def test_a_document_without_headings_is_all_intro():
    assert split_sections("Just text.\n") == ("Just text.", [])
