"""The jinja2 templates of everything the lab creates: kind/ (the cluster) and manifests/ (what is applied).

They live at the top of the checkout, next to the Makefile, so that users read and edit them there like
the guide's kind.yaml and manifests; kindlab is installed from the checkout (`make setup`, editable).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from tshoot.core.errors import TshootError

ROOT = Path(__file__).resolve().parent.parent
KIND_DIR = ROOT / "kind"
MANIFEST_DIR = ROOT / "manifests"


@lru_cache(maxsize=None)
def environment():
    import jinja2

    if not KIND_DIR.is_dir() or not MANIFEST_DIR.is_dir():
        raise TshootError(f"the lab's templates are not in {ROOT} (kind/, manifests/): install kindlab from its "
                          f"checkout with 'make setup'")
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROOT)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=False, autoescape=False)


def render(template: str, **context) -> str:
    """Render kind/… or manifests/… with the given context (an undefined variable is an error, never '')."""
    return environment().get_template(template).render(**context)


def templates(directory: str) -> list[str]:
    """The templates under manifests/<directory>, in the order their file names give (NN-name.yaml.j2)."""
    return sorted(f"{p.relative_to(ROOT)}" for p in (ROOT / directory).glob("*.yaml.j2"))
