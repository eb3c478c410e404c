"""The README and the guide show the example test files CI runs, not copies that could drift."""

import pytest

from tests.conftest import ROOT

WHERE = {
    "test_first.py": "README.md",
    "test_rust_filter.py": "docs/pages/testing.md",
    "test_go_filter.py": "docs/pages/testing.md",
    "test_hypothesis_recipe.py": "docs/pages/testing.md",
}


@pytest.mark.parametrize("name", sorted(WHERE))
def test_the_docs_embed_the_example_file_verbatim(name):
    text = (ROOT / WHERE[name]).read_text()
    source = (ROOT / "tests/examples" / name).read_text().rstrip()
    assert f"`tests/examples/{name}`:\n\n```python\n{source}\n```" in text
