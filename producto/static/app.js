// producto's page: a bar chart of the top ten states and a shaded US map, redrawn when the
// period changes. Plain JavaScript and SVG; every file it loads comes from this app.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#dbe7f5", "#b6cfea", "#8db3dc", "#6595cb", "#4176b5", "#255a98", "#103e73"];
  const NONE = "#eceef2";
  const fmt = new Intl.NumberFormat("en-US");
  const fmt1 = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1, minimumFractionDigits: 1 });

  const initial = JSON.parse(document.getElementById("initial-data").textContent);
  const state = { period: initial.period, top: initial.top, counts: initial.counts, shapes: null, population: null };

  function el(name, attrs, text) {
    const node = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function stateName(code) {
    return state.shapes && state.shapes[code] ? state.shapes[code].name : code;
  }

  function drawChart() {
    const box = document.getElementById("chart");
    const rows = state.top;
    document.getElementById("chart-empty").hidden = rows.length > 0;
    box.replaceChildren();
    box.dataset.period = state.period;
    if (!rows.length) return;
    // One SVG unit per CSS pixel, so labels stay readable on a phone.
    const width = Math.max(300, Math.min(560, Math.round(box.clientWidth || 420)));
    const rowH = 30, left = 120, right = 64;
    const max = Math.max(...rows.map((r) => r.sightings));
    const svg = el("svg", { viewBox: `0 0 ${width} ${rows.length * rowH}`, "aria-hidden": "true" });
    rows.forEach((row, i) => {
      const y = i * rowH;
      const w = Math.max(2, ((width - left - right) * row.sightings) / max);
      const g = el("g", { class: "bar", "data-state": row.state, "data-rank": row.rank, "data-sightings": row.sightings });
      g.append(el("title", {}, `${stateName(row.state)}: ${fmt.format(row.sightings)} sightings`));
      g.append(el("text", { class: "label", x: left - 8, y: y + rowH / 2 + 4, "text-anchor": "end" }, `${row.rank}. ${stateName(row.state)}`));
      g.append(el("rect", { x: left, y: y + 5, width: w.toFixed(1), height: rowH - 10, rx: 2 }));
      g.append(el("text", { class: "value", x: left + w + 6, y: y + rowH / 2 + 4 }, fmt.format(row.sightings)));
      svg.append(g);
    });
    box.append(svg);
  }

  function mapValues(perCapita) {
    const values = {};
    for (const code of Object.keys(state.shapes)) {
      const n = state.counts[code] || 0;
      values[code] = perCapita ? (n * 100000) / state.population[code] : n;
    }
    return values;
  }

  function drawMap() {
    if (!state.shapes) return;
    const perCapita = document.getElementById("per-capita").checked;
    const values = mapValues(perCapita);
    const max = Math.max(0, ...Object.values(values));
    // Square-root scale: a few big states would otherwise leave the rest the same pale shade.
    const bucket = (v) => (v <= 0 || max <= 0 ? -1 : Math.min(COLOURS.length - 1, Math.floor(Math.sqrt(v / max) * COLOURS.length)));
    const show = (v) => (perCapita ? fmt1.format(v) + " per 100,000" : fmt.format(v) + " sightings");
    const box = document.getElementById("map");
    const svg = el("svg", { viewBox: state.viewBox, role: "img", "aria-label": "map of the United States shaded by sightings" });
    for (const [code, shape] of Object.entries(state.shapes)) {
      const b = bucket(values[code]);
      const path = el("path", { d: shape.d, fill: b < 0 ? NONE : COLOURS[b], "data-state": code, "data-value": values[code] });
      path.append(el("title", {}, `${shape.name}: ${show(values[code])}`));
      svg.append(path);
    }
    box.replaceChildren(svg);
    box.dataset.period = state.period;
    box.dataset.perCapita = String(perCapita);
    drawLegend(max, perCapita);
  }

  function drawLegend(max, perCapita) {
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    const item = (colour, text) => {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = colour;
      span.append(swatch, text);
      legend.append(span);
    };
    item(NONE, "none");
    const show = (v) => (perCapita ? fmt1.format(v) : fmt.format(Math.round(v)));
    COLOURS.forEach((colour, i) => {
      const upper = max * ((i + 1) / COLOURS.length) ** 2;
      item(colour, `≤ ${show(upper)}`);
    });
  }

  function status(message) {
    let node = document.getElementById("status");
    if (!node) {
      node = document.createElement("p");
      node.id = "status";
      node.className = "status";
      document.getElementById("run").append(node);
    }
    node.textContent = message;
    node.hidden = !message;
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || response.statusText);
    return body;
  }

  async function showPeriod(period) {
    const base = `${initial.api}/runs/${initial.runDate}`;
    const query = `?period=${encodeURIComponent(period)}`;
    try {
      const [top, counts] = await Promise.all([
        getJSON(`${base}/top-states${query}`),
        getJSON(`${base}/state-sightings${query}`),
      ]);
      Object.assign(state, { period, top: top.states, counts: counts.states });
      document.getElementById("period-label").textContent = period === "all" ? "all time" : period;
      const url = new URL(window.location.href);
      url.searchParams.set("run_date", initial.runDate);
      url.searchParams.set("period", period);
      history.replaceState(null, "", url);
      status("");
      drawChart();
      drawMap();
    } catch (err) {
      status(`Could not load ${period}: ${err.message}`);
    }
  }

  function step(delta) {
    // The list runs newest first after "All time"; "older" moves down it.
    const select = document.getElementById("period");
    const next = select.selectedIndex + delta;
    if (next < 0 || next >= select.options.length) return;
    select.selectedIndex = next;
    showPeriod(select.value);
  }

  async function start() {
    drawChart();
    document.getElementById("period").addEventListener("change", (e) => showPeriod(e.target.value));
    document.getElementById("run-date").addEventListener("change", (e) => {
      window.location.assign(`/?run_date=${encodeURIComponent(e.target.value)}`);
    });
    document.getElementById("older").addEventListener("click", () => step(1));
    document.getElementById("newer").addEventListener("click", () => step(-1));
    document.getElementById("per-capita").addEventListener("change", drawMap);
    try {
      const [shapes, population] = await Promise.all([getJSON("/static/us-states.json"), getJSON("/static/population-2020.json")]);
      Object.assign(state, { shapes: shapes.states, viewBox: shapes.viewBox, population: population.population });
      drawChart(); // again, now with state names
      drawMap();
    } catch (err) {
      status(`Could not load the map: ${err.message}`);
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
