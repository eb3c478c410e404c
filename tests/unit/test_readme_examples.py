"""The README shows the example test files CI runs, not copies that could drift."""

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("name", ["test_rust_filter.py", "test_go_filter.py", "test_hypothesis_recipe.py"])
def test_readme_embeds_the_example_file_verbatim(name):
    readme = (ROOT / "README.md").read_text()
    source = (ROOT / "tests/examples" / name).read_text().rstrip()
    assert f"`tests/examples/{name}`:\n\n```python\n{source}\n```" in readme
