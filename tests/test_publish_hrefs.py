"""publish --base-href maps each local file to a URL that names exactly that file, whatever its name."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlmkit.catalog.publish import plan_publication
from model_catalogs import NIR_BANDS, item_path, model_catalog

BASE = "https://models.example.org/published/"


def test_base_href_urls_name_each_file_even_with_url_syntax_in_its_name(tmp_path: Path) -> None:
    cat = model_catalog(tmp_path / "m", "hrefs", task="classification", bands=NIR_BANDS, bbox=[0, 0, 1, 1])
    path = item_path(cat, "hrefs")
    names = ["%2e%2e", "a b#c?d.tif", "50%.txt"]
    item = json.loads(path.read_text())
    for n, name in enumerate(names):
        (path.parent / name).write_bytes(b"x")
        item["assets"][f"extra{n}"] = {"href": f"./{name}", "roles": ["metadata"]}
    path.write_text(json.dumps(item))
    plan = plan_publication(cat, base_href=BASE)
    (upload,) = [u for u in plan.uploads if u.kind == "item"]
    folder = path.parent.relative_to(cat).as_posix()
    for n, name in enumerate(names):
        url = urlsplit(upload.data["assets"][f"extra{n}"]["href"])
        assert (url.scheme, url.netloc, url.query, url.fragment) == ("https", "models.example.org", "", "")
        decoded = unquote(url.path)
        assert decoded == f"/published/{folder}/{name}"
        assert posixpath.normpath(decoded).startswith("/published/")
