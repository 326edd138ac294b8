// producto's page: a bar chart of the top ten states and a shaded US map, redrawn when the
// period changes, and a line chart of sightings by month. Plain JavaScript and SVG; every file
// it loads comes from this app. The address keeps every choice, so a view can be shared.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const COLOURS = ["#dbe7f5", "#b6cfea", "#8db3dc", "#6595cb", "#4176b5", "#255a98", "#103e73"];
  const NONE = "#eceef2";
  const fmt = new Intl.NumberFormat("en-US");
  // Per-capita figures of one month are often far below 1: significant digits, not decimals.
  const fmtSig = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 2 });
  const fmtSig3 = new Intl.NumberFormat("en-US", { maximumSignificantDigits: 3 });

  const initial = JSON.parse(document.getElementById("initial-data").textContent);
  const state = {
    period: initial.period, top: initial.top, counts: initial.counts, shapes: null, population: null,
    country: initial.country, trendState: initial.state, stateSeries: initial.stateSeries,
  };

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

  // x rounded up to two significant digits (whole numbers for counts), so legend steps read well.
  function niceCeil(x, whole) {
    let p = Math.pow(10, Math.floor(Math.log10(x)) - 1);
    if (whole) p = Math.max(1, p);
    return Number((Math.ceil(x / p - 1e-9) * p).toPrecision(15));
  }

  // Upper bounds of the shades: square-root steps (a few big states would otherwise leave the
  // rest the same pale shade), rounded, each step distinct; empty when nothing is above 0.
  function breaks(max, perCapita) {
    const out = [];
    if (!(max > 0)) return out;
    for (let i = 1; i <= COLOURS.length; i++) {
      const upper = niceCeil(max * (i / COLOURS.length) ** 2, !perCapita);
      if (!out.length || upper > out[out.length - 1]) out.push(upper);
    }
    return out;
  }

  // The colour of each step, spread over the palette when there are fewer steps than colours.
  function stepColours(n) {
    if (n === 1) return [COLOURS[Math.floor(COLOURS.length / 2)]];
    return Array.from({ length: n }, (_, i) => COLOURS[Math.round((i * (COLOURS.length - 1)) / (n - 1))]);
  }

  function drawMap() {
    if (!state.shapes) return;
    const perCapita = document.getElementById("per-capita").checked;
    const values = mapValues(perCapita);
    const max = Math.max(0, ...Object.values(values));
    const uppers = breaks(max, perCapita);
    const colours = stepColours(uppers.length);
    const bucket = (v) => {
      if (!(v > 0)) return -1;
      const i = uppers.findIndex((u) => v <= u);
      return i < 0 ? uppers.length - 1 : i;
    };
    const show = (v) => (perCapita ? fmtSig3.format(v) + " per 100,000" : fmt.format(v) + " sightings");
    const box = document.getElementById("map");
    const svg = el("svg", { viewBox: state.viewBox, role: "img", "aria-label": "map of the United States shaded by sightings" });
    for (const [code, shape] of Object.entries(state.shapes)) {
      const b = bucket(values[code]);
      const path = el("path", { d: shape.d, fill: b < 0 ? NONE : colours[b], "data-state": code, "data-value": values[code], "data-step": b });
      path.append(el("title", {}, `${shape.name}: ${show(values[code])}`));
      svg.append(path);
    }
    box.replaceChildren(svg);
    box.dataset.period = state.period;
    box.dataset.perCapita = String(perCapita);
    drawLegend(uppers, colours, perCapita);
  }

  function drawLegend(uppers, colours, perCapita) {
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    const item = (colour, text, upper) => {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = colour;
      span.append(swatch, text);
      if (upper !== undefined) span.dataset.upper = String(upper);
      legend.append(span);
    };
    item(NONE, "none");
    const show = (v) => (perCapita ? fmtSig.format(v) : fmt.format(v));
    uppers.forEach((upper, i) => item(colours[i], `≤ ${show(upper)}`, upper));
  }

  // Sightings per month: the whole US, and one state when chosen.
  function drawTrend() {
    const box = document.getElementById("trend-chart");
    const country = state.country || [];
    box.replaceChildren();
    if (!country.length) return;
    const width = Math.max(300, Math.min(1100, Math.round(box.clientWidth || 800)));
    const height = 220, left = 52, right = 12, top = 12, bottom = 26;
    const max = Math.max(1, ...country.map((m) => m.sightings));
    const x = (i) => left + (country.length === 1 ? 0 : (i * (width - left - right)) / (country.length - 1));
    const y = (v) => top + (height - top - bottom) * (1 - v / max);
    const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, "aria-hidden": "true" });
    svg.append(el("line", { class: "axis", x1: left, y1: y(0), x2: width - right, y2: y(0) }));
    svg.append(el("text", { class: "tick", x: left - 6, y: y(max) + 4, "text-anchor": "end" }, fmt.format(max)));
    svg.append(el("text", { class: "tick", x: left - 6, y: y(0) + 4, "text-anchor": "end" }, "0"));
    // About eight year labels, on January of evenly spaced years.
    const first = Number(country[0].period.slice(0, 4));
    const last = Number(country[country.length - 1].period.slice(0, 4));
    const every = Math.max(1, Math.ceil((last - first + 1) / 8));
    country.forEach((m, i) => {
      const year = Number(m.period.slice(0, 4));
      if ((m.period.endsWith("-01") || i === 0) && (year - first) % every === 0) {
        svg.append(el("text", { class: "tick", x: x(i), y: height - 8, "text-anchor": "middle" }, String(year)));
      }
    });
    const line = (series, name, code) => {
      const points = series.map((m, i) => `${x(i).toFixed(1)},${y(m.sightings).toFixed(1)}`).join(" ");
      const total = series.reduce((sum, m) => sum + m.sightings, 0);
      const node = el("polyline", { class: `line ${name}`, points, "data-series": code || "US", "data-months": series.length, "data-total": total });
      node.append(el("title", {}, `${code ? stateName(code) : "United States"}: ${fmt.format(total)} sightings`));
      svg.append(node);
    };
    line(country, "country", null);
    if (state.trendState && state.stateSeries) line(state.stateSeries, "state", state.trendState);
    box.append(svg);
    box.dataset.state = state.trendState || "";
  }

  function setAddress(changes) {
    const url = new URL(window.location.href);
    url.searchParams.set("run_date", initial.runDate);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "" || value === false) url.searchParams.delete(key);
      else url.searchParams.set(key, value === true ? "1" : value);
    }
    history.replaceState(null, "", url);
  }

  async function showTrendState(code) {
    try {
      const series = code ? (await getJSON(`${initial.api}/runs/${initial.runDate}/monthly?state=${encodeURIComponent(code)}`)).months : null;
      Object.assign(state, { trendState: code || null, stateSeries: series });
      setAddress({ state: code || null });
      status("");
      drawTrend();
    } catch (err) {
      status(`Could not load ${code}: ${err.message}`);
    }
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
      setAddress({ period });
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
    document.getElementById("per-capita").addEventListener("change", (e) => {
      setAddress({ per_capita: e.target.checked });
      drawMap();
    });
    document.getElementById("trend-state").addEventListener("change", (e) => showTrendState(e.target.value));
    drawTrend();
    try {
      const [shapes, population] = await Promise.all([getJSON("/static/us-states.json"), getJSON("/static/population-2020.json")]);
      Object.assign(state, { shapes: shapes.states, viewBox: shapes.viewBox, population: population.population });
      drawChart(); // again, now with state names
      drawMap();
      drawTrend();
    } catch (err) {
      status(`Could not load the map: ${err.message}`);
    }
    document.body.dataset.ready = "true";
  }

  start();
})();
