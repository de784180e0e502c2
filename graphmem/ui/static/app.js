/* graphmem explorer. Plain JavaScript over the REST API; no framework, no build step.
 * Every text that comes from the store is put on the page with textContent (never as markup),
 * and the graph draws labels on a canvas. */
(function () {
  "use strict";

  const MAX_GRAPH_NODES = 500; // past this the graph stops growing (open a node's own page instead)
  const MAX_TIMELINE_ROWS = 200;
  const state = {
    key: sessionStorage.getItem("graphmem.key") || "",
    group: sessionStorage.getItem("graphmem.group") || "",
    maxNeighbours: 50,
  };

  // -- small helpers --------------------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes (never markup). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function day(iso) {
    return iso ? iso.slice(0, 10) : "?";
  }

  /** Call the API with the key of this tab; the problem's detail on failure. */
  async function api(path, params, body) {
    const url = new URL(path, location.origin);
    const query = Object.assign({}, params || {});
    if (state.group && !body) query.group = state.group;
    for (const [k, v] of Object.entries(query)) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
    const headers = { Accept: "application/json" };
    if (state.key) headers.Authorization = "Bearer " + state.key;
    const init = { method: body ? "POST" : "GET", headers };
    if (body) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(state.group ? Object.assign({ group: state.group }, body) : body);
    }
    const response = await fetch(url, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const hint = response.status === 401 ? " (enter an API key at the top right)" : "";
      throw new Error((data.detail || response.status + " " + response.statusText) + hint);
    }
    return data;
  }

  function entityLink(name, label) {
    return el("a", { href: "#/entity/" + encodeURIComponent(name), class: "entity-link" }, label || name);
  }

  // -- header: key, group, counts -------------------------------------------------------------
  async function loadInfo() {
    try {
      const info = await api("/v1/ui/info");
      state.maxNeighbours = info.max_neighbours;
      const s = info.stats;
      $("info").textContent = `group ${info.group} · ${s.episodes} passages · ${s.entities} entities · ${s.facts} facts` +
        (info.auth === "local" ? " · local mode" : "");
      showError("");
    } catch (err) {
      $("info").textContent = "";
      showError(err.message);
    }
  }

  $("key").value = state.key;
  $("group").value = state.group;
  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = $("key").value.trim();
    state.group = $("group").value.trim();
    sessionStorage.setItem("graphmem.key", state.key);
    sessionStorage.setItem("graphmem.group", state.group);
    loadInfo();
    route();
  });

  // -- search ---------------------------------------------------------------------------------
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const q = $("search-query").value.trim();
    if (q) location.hash = "#/search/" + encodeURIComponent(q);
  });

  async function runSearch(query) {
    $("search-query").value = query;
    const status = $("search-status");
    const list = clear($("search-results"));
    status.textContent = "Searching…";
    const body = { query, k: Number($("search-k").value) || 5, mode: $("search-mode").value };
    if ($("search-as-of").value) body.as_of = $("search-as-of").value + "T23:59:59";
    try {
      const found = await api("/v1/search", null, body);
      status.textContent = `${found.results.length} passages in ${found.took_ms} ms (${found.mode})`;
      for (const hit of found.results) list.append(hitCard(hit));
      showError("");
    } catch (err) {
      status.textContent = "";
      showError(err.message);
    }
  }

  function hitCard(hit) {
    const head = [`#${hit.rank}`, `score ${hit.score.toFixed(4)}`, hit.title, hit.source, hit.occurred_at && day(hit.occurred_at), hit.speaker]
      .filter(Boolean).join(" · ");
    const why = el("div", { class: "why" });
    if (hit.entities.length) {
      why.append(el("div", {}, "Seed entities: ",
        el("ul", { class: "chips" }, hit.entities.map((name) => el("li", {}, entityLink(name))))));
    }
    if (hit.facts.length) {
      why.append(el("div", {}, "Seed facts:", el("ul", { class: "facts" }, hit.facts.map((f) => el("li", {}, f)))));
    }
    if (!hit.entities.length && !hit.facts.length) why.append(el("span", { class: "muted" }, "ranked by its text alone"));
    return el("li", { class: "hit", "data-uuid": hit.uuid }, el("div", { class: "head" }, head),
      el("div", { class: "content" }, hit.content), why);
  }

  // -- entity page: the neighbourhood graph ------------------------------------------------------
  const graphState = { center: null, expanded: new Map(), selected: null, times: [], timeline: null };
  let cy = null;

  const graphStyle = [
    { selector: "node", style: { label: "data(label)", "font-size": 10, "background-color": "#6ea8fe", width: 18, height: 18,
      "text-valign": "bottom", "text-margin-y": 3, color: "#1d2430", "text-wrap": "ellipsis", "text-max-width": 120 } },
    { selector: "node.center", style: { "background-color": "#d9480f", width: 26, height: 26, "font-weight": "bold" } },
    { selector: "node.expanded", style: { "border-width": 2, "border-color": "#1d2430" } },
    { selector: "node:selected", style: { "border-width": 3, "border-color": "#f59f00" } },
    { selector: "edge", style: { label: "data(label)", "font-size": 9, width: 1.5, "line-color": "#9fb0c8", color: "#44516a",
      "target-arrow-shape": "triangle", "target-arrow-color": "#9fb0c8", "curve-style": "bezier", "text-rotation": "autorotate",
      "text-background-color": "#fff", "text-background-opacity": 0.8, "text-background-padding": 1 } },
    { selector: "edge.ended", style: { "line-style": "dashed", "line-color": "#c3c9d4", color: "#8a94a6" } },
  ];

  function makeGraph(container) {
    return cytoscape({ container, style: graphStyle, minZoom: 0.1, maxZoom: 4,
      textureOnViewport: true, hideEdgesOnViewport: true });
  }

  function asOfParams() {
    const i = Number($("asof-slider").value);
    const when = i < graphState.times.length ? graphState.times[i] : null;
    return { as_of: when, history: !when && $("asof-history").checked ? "true" : null };
  }

  async function openEntity(name) {
    $("entity-query").value = name;
    clear($("entity-suggestions"));
    graphState.expanded = new Map();
    graphState.selected = null;
    if (!cy) {
      cy = makeGraph($("graph"));
      cy.on("tap", "node", (event) => {
        const uuid = event.target.id();
        if (graphState.expanded.has(uuid)) selectNode(uuid); else expandNode(uuid).catch((e) => showError(e.message));
      });
      cy.on("dbltap", "node", (event) => { location.hash = "#/entity/" + encodeURIComponent(event.target.data("name")); });
      window.explorer.cy = cy;
    }
    cy.elements().remove();
    try {
      const timeline = await api("/v1/ui/timeline", { entity: name });
      graphState.center = timeline.entity;
      graphState.times = timeline.times;
      graphState.timeline = timeline;
      setupSlider();
      renderEntityMeta(timeline.entity);
      renderTimeline();
      await expandNode(timeline.entity.uuid, true);
      loadPassages(0);
      showError("");
    } catch (err) {
      if (err.message.startsWith("no entity named")) return suggest(name, err.message);
      showError(err.message);
    }
  }

  async function suggest(text, why) {
    const list = clear($("entity-suggestions"));
    try {
      const found = await api("/v1/ui/entities", { q: text });
      if (!found.entities.length) return showError(why);
      showError("");
      list.append(el("li", { class: "muted" }, "Did you mean:"));
      for (const e of found.entities) list.append(el("li", {}, entityLink(e.uuid, `${e.name} (${e.mentions})`)));
    } catch (err) {
      showError(err.message);
    }
  }

  /** Add one more page of ``uuid``'s neighbours (the first page when it was not expanded yet). */
  async function expandNode(uuid, isCenter) {
    selectNode(uuid);
    const seen = graphState.expanded.get(uuid);
    if (seen && seen.skip >= seen.total) return;
    if (cy.nodes().length >= MAX_GRAPH_NODES) {
      $("graph-count").textContent = `${cy.nodes().length} nodes (the most drawn): open a neighbour's page to go further`;
      return;
    }
    const skip = seen ? seen.skip : 0;
    const page = await api("/v1/ui/neighbours", Object.assign({ entity: uuid, skip, limit: state.maxNeighbours }, asOfParams()));
    graphState.expanded.set(uuid, { skip: skip + page.nodes.length, total: page.total, name: page.entity.name });
    addPage(page, isCenter);
    selectNode(uuid);
  }

  function addPage(page, isCenter) {
    const added = [];
    const center = page.entity;
    if (!cy.getElementById(center.uuid).length) {
      added.push({ group: "nodes", data: { id: center.uuid, name: center.name, label: center.name, type: center.type } });
    }
    for (const n of page.nodes) {
      if (!cy.getElementById(n.uuid).length) {
        added.push({ group: "nodes", data: { id: n.uuid, name: n.name, label: n.name, type: n.type } });
      }
    }
    for (const e of page.edges) {
      if (!cy.getElementById(e.uuid).length) {
        added.push({ group: "edges", classes: e.invalid_at ? "ended" : "",
          data: { id: e.uuid, source: e.source, target: e.target, label: e.predicate, predicate: e.predicate,
            text: e.text, valid_at: e.valid_at, invalid_at: e.invalid_at } });
      }
    }
    cy.add(added);
    cy.getElementById(center.uuid).addClass("expanded");
    if (isCenter) cy.getElementById(center.uuid).addClass("center");
    layout();
  }

  function layout() {
    const options = cy.nodes().length > 150
      ? { name: "concentric", animate: false, concentric: (n) => (n.hasClass("center") ? 3 : n.hasClass("expanded") ? 2 : 1), levelWidth: () => 1 }
      : { name: "cose", animate: false, randomize: false, numIter: 400, nodeRepulsion: () => 60000, idealEdgeLength: () => 90 };
    cy.layout(options).run();
    cy.fit(undefined, 20);
    updateCounts();
  }

  function updateCounts() {
    $("graph-count").textContent = `${cy.nodes().length} nodes · ${cy.edges().length} edges`;
  }

  function selectNode(uuid) {
    graphState.selected = uuid;
    const node = cy.getElementById(uuid);
    const seen = graphState.expanded.get(uuid);
    const more = $("graph-more");
    const name = node.length ? node.data("name") : uuid;
    const box = clear($("selected"));
    if (seen) {
      box.append(`${name}: ${Math.min(seen.skip, seen.total)} of ${seen.total} neighbours drawn `, entityLink(name, "open its page"));
      more.hidden = seen.skip >= seen.total;
      more.textContent = `More neighbours of ${name} (next ${Math.min(state.maxNeighbours, seen.total - seen.skip)})`;
    } else {
      box.append(`${name} `, entityLink(name, "open its page"));
      more.hidden = true;
    }
  }

  $("graph-more").addEventListener("click", () => graphState.selected && expandNode(graphState.selected).catch((e) => showError(e.message)));
  $("graph-fit").addEventListener("click", () => cy && cy.fit(undefined, 20));

  /** Re-draw the graph at the slider's time: the same nodes expanded, each from its first page. */
  async function redrawAsOf() {
    renderSliderLabel();
    renderTimeline();
    const expanded = Array.from(graphState.expanded.keys());
    const centerUuid = graphState.center.uuid;
    graphState.expanded = new Map();
    cy.elements().remove();
    try {
      for (const uuid of expanded) await expandNode(uuid, uuid === centerUuid);
      selectNode(centerUuid);
    } catch (err) {
      showError(err.message);
    }
  }

  function setupSlider() {
    const slider = $("asof-slider");
    slider.max = String(graphState.times.length);
    slider.value = String(graphState.times.length);
    slider.disabled = graphState.times.length === 0;
    renderSliderLabel();
  }

  function renderSliderLabel() {
    const i = Number($("asof-slider").value);
    const when = i < graphState.times.length ? graphState.times[i] : null;
    $("asof-label").textContent = when ? day(when) : "now";
    if (!graphState.times.length) $("asof-label").textContent = "now (no dated facts)";
  }

  $("asof-slider").addEventListener("input", renderSliderLabel);
  $("asof-slider").addEventListener("change", () => redrawAsOf());
  $("asof-history").addEventListener("change", () => redrawAsOf());

  // -- entity page: facts on a time axis -----------------------------------------------------------
  function renderEntityMeta(entity) {
    $("entity-name").textContent = entity.name;
    const aliases = entity.aliases.filter((a) => a !== entity.name);
    $("entity-meta").textContent = [entity.type, `${entity.mentions} mentions`, aliases.length && "also: " + aliases.join(", ")]
      .filter(Boolean).join(" · ");
  }

  function holdsAt(fact, when) {
    if (!when) return !fact.invalid_at;
    return (!fact.valid_at || fact.valid_at <= when) && (!fact.invalid_at || when < fact.invalid_at);
  }

  function renderTimeline() {
    const box = clear($("timeline"));
    const timeline = graphState.timeline;
    const facts = timeline.facts;
    if (!facts.length) return box.append(el("p", { class: "muted" }, "No facts about this entity."));
    const when = asOfParams().as_of;
    const byUuid = new Map(facts.map((f) => [f.uuid, f]));
    const times = graphState.times.map((t) => Date.parse(t));
    const now = Date.now();
    const lo = times.length ? Math.min(...times) : now;
    const span = Math.max(now - lo, 1);
    const pos = (iso) => (iso ? ((Date.parse(iso) - lo) / span) * 100 : 0);
    box.append(el("div", { class: "axis" }, el("span", {}, times.length ? day(graphState.times[0]) : ""), el("span", {}, "now")));
    for (const f of facts.slice(0, MAX_TIMELINE_ROWS)) {
      const start = pos(f.valid_at);
      const end = f.invalid_at ? pos(f.invalid_at) : 100;
      const track = el("div", { class: "track" },
        el("div", { class: "span", style: `left:${start}%;width:${Math.max(end - start, 1)}%` }));
      if (when) track.append(el("div", { class: "cursor", style: `left:${pos(when)}%` }));
      const holds = holdsAt(f, when);
      const row = el("div", { class: "row" + (holds ? " holds" : "") + (f.invalid_at ? " ended" : ""), "data-uuid": f.uuid,
        title: `${f.text}\nvalid ${day(f.valid_at)} → ${f.invalid_at ? day(f.invalid_at) : "now"}` },
      el("span", { class: "label" }, `${f.subject} ${f.predicate} ${f.object}`), track);
      const notes = [];
      if (f.valid_at || f.invalid_at) notes.push(`${day(f.valid_at)} → ${f.invalid_at ? day(f.invalid_at) : "now"}`);
      if (f.superseded_by && byUuid.has(f.superseded_by)) notes.push(`superseded by: ${byUuid.get(f.superseded_by).object}`);
      if (f.supersedes && byUuid.has(f.supersedes)) notes.push(`supersedes: ${byUuid.get(f.supersedes).object}`);
      if (notes.length) row.append(el("div", { class: "note" }, notes.join(" · ")));
      box.append(row);
    }
    if (facts.length > MAX_TIMELINE_ROWS) box.append(el("p", { class: "muted" }, `… and ${facts.length - MAX_TIMELINE_ROWS} more facts`));
  }

  // -- entity page: passages -----------------------------------------------------------------
  let passagesSkip = 0;
  async function loadPassages(skip) {
    const list = $("entity-passages");
    if (skip === 0) clear(list);
    const found = await api("/v1/ui/passages", { entity: graphState.center.uuid, skip });
    for (const p of found.passages) list.append(el("li", { "data-uuid": p.uuid }, el("strong", {}, p.title || ""), p.title ? " — " : "", p.content));
    passagesSkip = skip + found.passages.length;
    $("passages-more").hidden = passagesSkip >= found.total;
  }
  $("passages-more").addEventListener("click", () => loadPassages(passagesSkip).catch((e) => showError(e.message)));

  $("entity-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const name = $("entity-query").value.trim();
    if (name) location.hash = "#/entity/" + encodeURIComponent(name);
  });

  // -- Cypher console ---------------------------------------------------------------------------
  let cypherGraph = null;
  $("cypher-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = $("cypher-status");
    status.textContent = "Running…";
    const asGraph = document.querySelector("input[name=cypher-as]:checked").value === "graph";
    try {
      const found = await api("/v1/cypher", null, { query: $("cypher-query").value, limit: Number($("cypher-limit").value) || 200 });
      status.textContent = `${found.rows.length} rows${found.truncated ? " (truncated)" : ""} · group ${found.group}`;
      $("cypher-table").hidden = asGraph;
      $("cypher-graph").hidden = !asGraph;
      if (asGraph) renderCypherGraph(found); else renderCypherTable(found);
      showError("");
    } catch (err) {
      status.textContent = "";
      showError(err.message);
    }
  });

  function cellText(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }

  function renderCypherTable(found) {
    const head = el("tr", {}, found.columns.map((c) => el("th", {}, c)));
    const rows = found.rows.map((row) => el("tr", {}, row.map((v) => el("td", {}, cellText(v)))));
    clear($("cypher-table")).append(el("table", { id: "cypher-result" }, el("thead", {}, head), el("tbody", {}, rows)));
  }

  function renderCypherGraph(found) {
    if (!cypherGraph) { cypherGraph = makeGraph($("cypher-graph")); window.explorer.cypherGraph = cypherGraph; }
    cypherGraph.elements().remove();
    const nodes = new Map();
    const edges = new Map();
    const isNode = (v) => v && typeof v === "object" && !Array.isArray(v) && "uuid" in v && !("predicate" in v);
    const isEdge = (v) => v && typeof v === "object" && !Array.isArray(v) && "predicate" in v;
    for (const row of found.rows) {
      row.forEach((v, i) => {
        if (isNode(v)) nodes.set(v.uuid, v);
        if (!isEdge(v)) return;
        const before = row.slice(0, i).reverse().find(isNode);
        const after = row.slice(i + 1).find(isNode);
        if (before && after) edges.set(v.uuid || `${before.uuid}-${i}-${after.uuid}`, { v, source: before.uuid, target: after.uuid });
      });
    }
    const label = (v) => v.name || v.title || (v.content ? v.content.slice(0, 40) : v.uuid);
    cypherGraph.add(Array.from(nodes.values()).map((v) => ({ group: "nodes", data: { id: v.uuid, name: label(v), label: label(v) } })));
    for (const [id, e] of edges) {
      if (nodes.has(e.source) && nodes.has(e.target)) {
        cypherGraph.add({ group: "edges", classes: e.v.invalid_at ? "ended" : "",
          data: { id: "e:" + id, source: e.source, target: e.target, label: e.v.predicate, predicate: e.v.predicate } });
      }
    }
    cypherGraph.layout({ name: "cose", animate: false, numIter: 400 }).run();
    cypherGraph.fit(undefined, 20);
    $("cypher-status").textContent += ` · ${nodes.size} nodes, ${cypherGraph.edges().length} edges drawn`;
  }

  // -- routing: #/search/QUERY, #/entity/NAME, #/cypher ------------------------------------------------
  function route() {
    const [, view = "search", ...rest] = (location.hash || "#/search").split("/");
    const arg = decodeURIComponent(rest.join("/"));
    for (const name of ["search", "entity", "cypher"]) {
      $("view-" + name).hidden = name !== view;
      document.querySelector(`nav a[data-view=${name}]`).classList.toggle("active", name === view);
    }
    if (view === "search" && arg) runSearch(arg);
    if (view === "entity" && arg) openEntity(arg);
  }

  window.explorer = { state, graphState, cy: null, cypherGraph: null };
  window.addEventListener("hashchange", route);
  loadInfo();
  route();
})();
