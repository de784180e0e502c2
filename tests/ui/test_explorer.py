"""The graph explorer in a real browser: search, an entity's neighbourhood (expanding, paging),
the as-of slider, the Cypher console, store text that holds markup, and a second key."""

from __future__ import annotations

from urllib.parse import quote

from tests.ui.conftest import sign_in, wait_for

NODE_NAMES = "explorer.cy.nodes().map(n => n.data('name')).sort()"
EDGE_LABELS = "explorer.cy.edges().map(e => e.data('label')).sort()"


def open_entity(page, name: str) -> None:
    # void: a cytoscape collection sent back to Python would be serialised, cycles and all
    page.evaluate("void (explorer.cy && explorer.cy.elements().remove())")
    page.goto(page.url.split("#")[0] + "#/entity/" + quote(name))
    wait_for(page, f"document.getElementById('entity-name').textContent === {name!r}")
    wait_for(
        page, "explorer.cy && explorer.cy.nodes().length > 1 && document.getElementById('graph-count').textContent"
    )
    wait_for(page, "document.querySelectorAll('#entity-passages li').length > 0")  # the page has settled


def test_search_shows_passages_with_their_seeds_and_links_into_the_graph(page, artifacts):
    page.goto(page.url.split("#")[0] + "#/search/" + quote("Who built the Kessary Bridge?"))
    wait_for(page, "document.querySelectorAll('#search-results .hit').length === 5")
    first = page.locator("#search-results .hit").first
    assert "Halvane Steelworks built the bridge between 1909 and 1911" in first.locator(".content").inner_text()
    assert "Kessary Bridge" in first.locator(".chips").inner_text()
    assert "Halvane Steelworks built Kessary Bridge" in first.locator(".facts").inner_text()
    page.screenshot(path=str(artifacts / "search.png"))
    first.locator("a.entity-link", has_text="Halvane Steelworks").click()
    wait_for(page, "document.getElementById('entity-name').textContent === 'Halvane Steelworks'")
    wait_for(page, "explorer.cy.nodes().map(n => n.data('name')).includes('Kessary Bridge')")
    assert "build" in page.evaluate(EDGE_LABELS)


def test_entity_graph_labels_facts_and_expands_a_clicked_node(page, artifacts):
    open_entity(page, "Kessary Bridge")
    assert page.evaluate(NODE_NAMES) == sorted(
        [
            "Kessary Bridge",
            "Halvane Steelworks",
            "Serrin River",
            "main road",
            "narrow footpath",
            "residents",
            "stone and iron road bridge",
            "three arches",
        ]
    )
    assert page.evaluate(EDGE_LABELS) == sorted(["build", "cross", "carry", "have", "have", "float from", "be"])
    assert page.inner_text("#graph-count") == "8 nodes · 7 edges"
    assert "Kessary Bridge" in page.inner_text("#entity-passages")
    page.screenshot(path=str(artifacts / "entity.png"))
    # click the Serrin River node on the canvas: its own neighbours join the graph
    x, y = page.evaluate(
        "(() => { const p = explorer.cy.nodes().filter(n => n.data('name') === 'Serrin River').renderedPosition();"
        " const r = document.getElementById('graph').getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; })()"
    )
    page.mouse.click(x, y)
    wait_for(page, "explorer.cy.nodes().length > 8")
    assert "Marrow Hills" in page.evaluate(NODE_NAMES)  # the river rises in them
    assert "Serrin River" in page.inner_text("#selected")


def test_neighbourhood_draws_one_page_and_more_on_request(page, artifacts):
    open_entity(page, "Marlow Trading")
    total = page.evaluate("explorer.graphState.expanded.get(explorer.graphState.center.uuid).total")
    assert total > 50
    assert page.evaluate("explorer.cy.nodes().length") == 51  # the entity and its first 50 neighbours
    assert f"50 of {total} neighbours drawn" in page.inner_text("#selected")
    page.click("#graph-more")
    wait_for(page, f"explorer.cy.nodes().length === {total + 1}")
    assert page.locator("#graph-more").is_hidden()
    assert set(page.evaluate(EDGE_LABELS)) == {"own"}
    page.screenshot(path=str(artifacts / "hub.png"))


def test_as_of_slider_redraws_the_graph_and_the_timeline(page, artifacts):
    open_entity(page, "Ana")
    timeline = page.inner_text("#timeline")
    assert "Ana live in Lisbon" in timeline and "superseded by: Berlin" in timeline
    assert "supersedes: Lisbon" in timeline
    now = page.evaluate(NODE_NAMES)
    assert "Berlin" in now and "Kestrel Labs" in now and "Lisbon" not in now
    assert page.inner_text("#asof-label") == "now"
    page.locator("#asof-slider").fill("0")  # the first stop: the first session's date
    wait_for(page, "explorer.cy.nodes().map(n => n.data('name')).includes('Lisbon')")
    assert page.inner_text("#asof-label") == S1_DAY
    then = page.evaluate(NODE_NAMES)
    assert "Orvalis Robotics" in then and "Berlin" not in then and "Kestrel Labs" not in then
    assert "live in" in page.evaluate(EDGE_LABELS)
    holding = page.locator("#timeline .row.holds .label").all_inner_texts()
    assert any("Ana live in Lisbon" in row for row in holding)
    assert not any("Berlin" in row for row in holding)
    page.screenshot(path=str(artifacts / "timeline.png"))
    page.locator("#asof-slider").fill(str(page.evaluate("explorer.graphState.times.length")))
    wait_for(page, "explorer.cy.nodes().map(n => n.data('name')).includes('Berlin')")


S1_DAY = "2021-03-01"


def run_cypher(page, query: str, view: str) -> None:
    page.goto(page.url.split("#")[0] + "#/cypher")
    page.fill("#cypher-query", query)
    page.check(f"input[name=cypher-as][value={view}]")
    page.evaluate("document.getElementById('cypher-status').textContent = ''")
    page.click("#cypher-form button[type=submit]")
    wait_for(
        page,
        "document.getElementById('cypher-status').textContent.includes('rows') || "
        "!document.getElementById('error').hidden",
    )


def test_cypher_console_shows_a_table_and_a_graph_and_stays_read_only(page, artifacts):
    run_cypher(
        page,
        "MATCH (a:Entity {group_id: $group_id})-[f:FACT]->(b:Entity {name: 'Kessary Bridge'}) "
        "RETURN a.name AS who, f.predicate AS did ORDER BY who",
        "table",
    )
    table = page.inner_text("#cypher-result")
    assert "who" in table and "Halvane Steelworks" in table and "build" in table
    run_cypher(
        page,
        "MATCH (a:Entity {group_id: $group_id, name: 'Kessary Bridge'})-[f:FACT]-(b:Entity) RETURN a, f, b",
        "graph",
    )
    assert page.evaluate("explorer.cypherGraph.nodes().length") == 8
    assert "cross" in page.evaluate("explorer.cypherGraph.edges().map(e => e.data('label'))")
    page.screenshot(path=str(artifacts / "cypher.png"))
    run_cypher(page, "CREATE (n:Entity {group_id: $group_id, name: 'intruder'}) RETURN n", "table")
    assert "refused" in page.inner_text("#error")


def test_store_text_is_shown_as_text_never_run_as_markup(page):
    page.goto(page.url.split("#")[0] + "#/search/" + quote("What did the Quillon Press print?"))
    page.evaluate("document.getElementById('search-mode').value = 'bm25'")
    page.click("#search-form button[type=submit]")
    wait_for(page, "document.getElementById('search-results').textContent.includes('Quillon')")
    shown = page.inner_text("#search-results")
    assert "<script>window.pwned=1</script>" in shown and '<img src=x onerror="window.pwned=2">' in shown
    assert page.evaluate("document.querySelectorAll('#search-results script, #search-results img').length") == 0
    run_cypher(
        page, "MATCH (e:Episode {group_id: $group_id}) WHERE e.content CONTAINS 'Quillon' RETURN e.content", "table"
    )
    assert "<script>window.pwned=1</script>" in page.inner_text("#cypher-result")
    assert page.evaluate("document.querySelectorAll('#cypher-result script, #cypher-result img').length") == 0
    assert page.evaluate("typeof window.pwned") == "undefined"
    page.evaluate("document.getElementById('search-mode').value = 'graph'")


def test_a_second_key_sees_only_its_own_group_through_the_page(browser, explorer):
    context = browser.new_context()
    tab = context.new_page()
    try:
        tab.goto(explorer.url + "/ui/#/entity/" + quote("Kessary Bridge"))
        wait_for(tab, "!document.getElementById('error').hidden")
        assert "API key" in tab.inner_text("#error")  # no key yet: 401, and the page says what to do
        sign_in(tab, explorer.key_b)
        assert tab.inner_text("#info").startswith("group beta")
        tab.goto(explorer.url + "/ui/#/entity/" + quote("Kessary Bridge"))
        wait_for(tab, "document.getElementById('error').textContent.includes('no entity named')")
        assert tab.evaluate("explorer.cy ? explorer.cy.nodes().length : 0") == 0
        tab.goto(explorer.url + "/ui/#/entity/" + quote("Orrin Lighthouse"))
        wait_for(tab, "document.getElementById('entity-name').textContent === 'Orrin Lighthouse'")
    finally:
        context.close()
