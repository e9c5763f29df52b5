"""The HTML pages in a real browser: headless Chromium (Debian's, which `.ci/run`
installs) driven by Playwright opens the GRAPHC_DUMP pages of the mlp training step,
softmax and a torch model from disk, and the rendered DOM must hold every pass, every
kernel's source and one SVG cluster per fusion group, with no JavaScript error; a
click on a source line must light its nodes. Skipped only where Chromium or
Playwright is absent. A screenshot of each page is left in the test's folder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.ir import parse
from tests.report_programs import mlp_args, mlp_step, softmax

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed"),
              pytest.mark.usefixtures("no_compile_cache")]
# as root, in a closed network: no sandbox, and none of Chromium's background traffic
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSES = ["traced", "simplify", "cse", "fold", "dce", "fusion"]


def chain(h, w):  # past 300 nodes: the overview draws one box per group
    for _ in range(80):
        h = np.tanh(h @ w) * 0.5 + h
    return np.sum(h)


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Path:
    """A dump folder with the pages of three compiles."""
    folder = tmp_path_factory.mktemp("dump")
    mp = pytest.MonkeyPatch()
    mp.setenv("GRAPHC_DUMP", str(folder))
    mp.setenv("GRAPHC_CACHE", "0")
    try:
        rng = np.random.default_rng(0)
        f32 = np.float32
        graphc.compile(mlp_step)(*mlp_args())
        graphc.compile(softmax)(rng.standard_normal((16, 50), f32))
        graphc.compile(chain)(np.full((4, 8), 0.1, f32), np.eye(8, dtype=f32) * 0.5)
        torch = pytest.importorskip("torch")
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(),
                                    torch.nn.Linear(16, 2))
        graphc.compile(model)(torch.randn(4, 8)).sum().backward()
    finally:
        mp.undo()
    return folder


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _open(browser, path: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_selector("html[data-ready]")
    return page, errors


def _entries(folder: Path) -> list[dict]:
    return json.loads((folder / "index.json").read_text())


def test_the_dump_holds_the_three_compiles(pages):
    names = {e["function"] for e in _entries(pages)}
    assert {"mlp_step", "softmax", "chain"} <= names
    assert any(n.startswith("Sequential") for n in names)  # its forward and backward


def test_each_page_renders_every_pass_kernel_and_cluster(pages, browser):
    for entry in _entries(pages):
        path = pages / entry["report"]
        optimized = parse((pages / f"{entry['stem']}.optimized.ir").read_text())
        groups = [i for i, g in enumerate(optimized.groups) if g.kind != "source"]
        page, errors = _open(browser, path)
        shown = [t.split(" (")[0] for t in page.locator(".pass-name").all_inner_texts()]
        assert shown == PASSES, entry["stem"]
        assert page.locator("#graph g.cluster").count() == len(groups)
        assert sorted(int(x) for x in page.locator("#graph g.cluster").evaluate_all(
            "els => els.map(e => e.dataset.group)")) == groups
        sources = page.locator("details.kernel pre.kernel-source")
        assert sources.count() == len(groups)
        texts = sources.evaluate_all("els => els.map(e => e.textContent)")
        assert all(t.strip() and "no generated line" not in t for t in texts), entry["stem"]
        assert page.locator("#graph .edge").count() > 0
        page.screenshot(path=str(path.with_suffix(".png")), full_page=False)
        assert errors == [], f"{entry['stem']}: {errors}"
        page.close()


def test_a_source_line_lights_its_nodes_and_a_cluster_opens_its_kernel(pages, browser):
    (entry,) = [e for e in _entries(pages) if e["function"] == "softmax"]
    page, errors = _open(browser, pages / entry["report"])
    page.locator("#source .src-line.linked").first.click()
    assert page.locator("#graph .node.hl").count() >= 1
    assert page.locator("#passes .ir-line.hl").count() >= 1
    page.locator("#graph g.cluster .cluster-label").first.evaluate(
        "el => el.closest('.cluster').dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    assert page.locator("details.kernel[open]").count() == 1
    assert errors == []
    page.close()


def test_the_index_page_links_every_compile(pages, browser):
    page, errors = _open(browser, pages / "index.html")
    links = page.locator("table.index a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert sorted(links) == sorted(e["report"] for e in _entries(pages))
    assert errors == []
    page.close()


def test_a_large_graphs_groups_are_boxes_that_expand_on_click(pages, browser):
    (entry,) = [e for e in _entries(pages) if e["function"] == "chain"]
    optimized = parse((pages / f"{entry['stem']}.optimized.ir").read_text())
    page, errors = _open(browser, pages / entry["report"])
    assert page.locator('#graph[data-collapsed="1"]').count() == 1
    assert page.locator("#graph .node").count() == 0  # collapsed: boxes only
    matmul = next(i for i, g in enumerate(optimized.groups) if g.kind == "matmul")
    cluster = page.locator(f'#graph g.cluster[data-group="{matmul}"]')
    cluster.evaluate("el => el.dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    popover = page.locator(f'.popover[data-group="{matmul}"]')
    assert popover.count() == 1 and popover.is_visible()
    assert popover.locator(".node").count() == len(optimized.groups[matmul].nodes)
    page.screenshot(path=str((pages / entry["report"]).with_suffix(".expanded.png")))
    cluster.evaluate("el => el.dispatchEvent(new MouseEvent('click', {bubbles: true}))")
    assert page.locator(".popover").count() == 0  # a second click closes it
    assert errors == []
    page.close()
