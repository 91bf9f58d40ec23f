// monitor's web application: plain JavaScript over the dashboard's JSON API
// (docs/dashboard.md), charts by uPlot. Every view is a URL (#/chart?…), so a
// view can be shared and reloaded; charts refresh as minutes become final.
"use strict";

const main = document.getElementById("main");
// What the charts on the page draw, by chart key: for people debugging a
// view in the console, and for the browser test (tests/browser/).
window.monitorCharts = {};
let refreshTimer = null;

// ---- small helpers ------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick" || k === "onsubmit" || k === "onchange") e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  let body = null;
  try { body = await response.json(); } catch (e) { body = { error: `HTTP ${response.status}` }; }
  if (response.status === 401 && path !== "/api/login") { showSignIn(); throw new Error("signed out"); }
  if (!response.ok) throw new Error(body && body.error ? body.error : `HTTP ${response.status}`);
  return body;
}

function post(path, body, method = "POST") {
  return api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/services";
  const [path, query] = hash.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

function go(path, params) {
  location.hash = "#" + path + (params ? "?" + new URLSearchParams(params).toString() : "");
}

const time = (s) => new Date(s * 1000).toISOString().replace("T", " ").replace(/:\d\d\.000Z$/, "Z");
const rangeSeconds = { "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400 };
const shiftLabel = (s) => (s === 0 ? "" : s % 86400 === 0 ? ` (${s / 86400}d ago)` : ` (${s}s ago)`);

function select(name, value, options) {
  const s = el("select", { name });
  for (const o of options) {
    const opt = el("option", { value: o }, o);
    if (o === value) opt.selected = true;
    s.append(opt);
  }
  return s;
}

function showError(where, error) {
  where.append(el("p", { class: "error" }, String(error.message || error)));
}

// ---- sign-in ------------------------------------------------------------------

function showSignIn(message) {
  clearInterval(refreshTimer);
  document.getElementById("nav").hidden = true;
  document.getElementById("who").textContent = "";
  main.replaceChildren(
    el("h1", {}, "Sign in"),
    el("form", { class: "signin", id: "signin", onsubmit: async (e) => {
      e.preventDefault();
      const form = e.target;
      try {
        await post("/api/login", { user: form.user.value, password: form.password.value });
        start();
      } catch (err) {
        showSignIn(err.message);
      }
    } },
      el("input", { name: "user", placeholder: "user", autocomplete: "username", required: "" }),
      el("input", { name: "password", type: "password", placeholder: "password", autocomplete: "current-password", required: "" }),
      el("button", { type: "submit" }, "Sign in"),
      message ? el("p", { class: "error", id: "signin-error" }, message) : ""));
}

async function start() {
  let me;
  try { me = await api("/api/me"); } catch (e) { return; }
  document.getElementById("nav").hidden = false;
  document.getElementById("who").replaceChildren(
    `${me.user} (${me.roles.join(", ") || "no role"})`,
    el("button", { onclick: async () => { await post("/api/logout", {}); showSignIn(); } }, "Sign out"));
  render();
}

// ---- charts -------------------------------------------------------------------

const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

// Draws the lines of one /api/series answer; returns the problems to show.
function drawChart(key, container, answer, width, height) {
  const times = new Set();
  for (const line of answer.series) for (const [t] of line.points) times.add(t);
  const xs = [...times].sort((a, b) => a - b);
  const index = new Map(xs.map((t, i) => [t, i]));
  const data = [xs];
  const series = [{}];
  const problems = [];
  answer.series.forEach((line, i) => {
    const ys = new Array(xs.length).fill(null);
    for (const [t, v] of line.points) ys[index.get(t)] = v;
    data.push(ys);
    const label = (line.server === "total" ? "total" : `server ${line.server}`) + shiftLabel(line.shift);
    series.push({ label, stroke: palette[i % palette.length], width: line.shift ? 1 : 1.5,
                  dash: line.shift ? [6, 4] : undefined, spanGaps: false });
    if (line.error) problems.push(`${label}: ${line.error}`);
    else if (line.empty) problems.push(`${label}: ${line.empty}`);
    if (line.partial) problems.push(`${label}: ${line.partial}`);
  });
  // The range asked for, not only where there are points: a gap is visible as one.
  const opts = { width, height, series, scales: { x: { time: true, range: () => [answer.from, answer.to] } },
                 axes: [{}, { size: 70 }] };
  const started = performance.now();
  const plot = new uPlot(opts, data, container);
  // drawnAt: since the page began loading, what the chart bench reads.
  window.monitorCharts[key] = { answer, data, plot, drawnMs: performance.now() - started, drawnAt: performance.now() };
  return problems;
}

function seriesPath(p) {
  const range = rangeSeconds[p.get("range") || "24h"] || 86400;
  const to = p.get("to") ? Number(p.get("to")) : Math.floor(Date.now() / 1000);
  const from = p.get("from") ? Number(p.get("from")) : to - range;
  const q = new URLSearchParams({ service: p.get("service"), attr: p.get("attr"), op: p.get("op") || "SUM",
                                  servers: p.get("servers") || "total", from, to, step: p.get("step") || "60",
                                  shift: ["0", ...(p.get("shift") ? p.get("shift").split(",") : [])].join(",") });
  return "/api/series?" + q.toString();
}

async function chartView(p) {
  const service = p.get("service"), attr = p.get("attr");
  const form = el("form", { class: "controls", id: "chart-controls", onsubmit: (e) => {
    e.preventDefault();
    const f = e.target;
    const shifts = [f.shift1d.checked ? "1d" : "", f.shift7d.checked ? "7d" : ""].filter(Boolean).join(",");
    const params = { service, attr, op: f.op.value, servers: f.servers.value.replace(/\s+/g, ""), range: f.range.value,
                     step: f.step.value };
    if (shifts) params.shift = shifts;
    go("/chart", params);
  } },
    el("label", {}, "op", select("op", p.get("op") || "SUM",
      ["SUM", "COUNT", "AVG", "MAX", "MIN", "FIRST", "LAST", "HIST_P50", "HIST_P90", "HIST_P99", "HIST_P999"])),
    el("label", {}, "servers (total, ids)", el("input", { name: "servers", value: p.get("servers") || "total", size: 30 })),
    el("label", {}, "range", select("range", p.get("range") || "24h", Object.keys(rangeSeconds))),
    el("label", {}, "step (s)", select("step", p.get("step") || "60", ["60", "300", "3600"])),
    el("label", {}, "yesterday", el("input", { type: "checkbox", name: "shift1d" })),
    el("label", {}, "last week", el("input", { type: "checkbox", name: "shift7d" })),
    el("button", { type: "submit" }, "Show"));
  const shifts = (p.get("shift") || "").split(",");
  form.shift1d.checked = shifts.includes("1d");
  form.shift7d.checked = shifts.includes("7d");
  const chart = el("div", { class: "chart", id: "chart" });
  const status = el("div", { id: "chart-status" });
  main.replaceChildren(el("h1", {}, `${service} · ${attr}`), form, chart, status,
    el("p", {}, el("a", { href: "#/top?" + new URLSearchParams({ service, attr, op: p.get("op") || "SUM" }) }, "top servers"),
      " · ", el("a", { href: "#/service?" + new URLSearchParams({ service }) }, "all attrs of " + service)));
  const draw = async () => {
    try {
      const answer = await api(seriesPath(p));
      chart.replaceChildren();
      const problems = drawChart("main", chart, answer, Math.min(1100, window.innerWidth - 60), 360);
      status.replaceChildren(el("p", { class: "note" }, `minutes final through ${answer.last_minute ? time(answer.last_minute) : "—"}; refreshed ${new Date().toLocaleTimeString()}`));
      if (problems.length) status.append(el("ul", { class: "problems" }, ...problems.map((x) => el("li", { class: "error" }, x))));
    } catch (e) {
      status.replaceChildren();
      showError(status, e);
    }
  };
  await draw();
  if (!p.get("to")) refreshTimer = setInterval(draw, 20000);  // a live range follows the minutes as they become final
}

// Several attrs of one service on one page, each its total.
async function serviceView(p) {
  const service = p.get("service");
  main.replaceChildren(el("h1", {}, service));
  let list;
  try { list = await api("/api/services"); } catch (e) { return showError(main, e); }
  const s = list.services.find((x) => x.service === service);
  if (!s) return showError(main, new Error(`${service} is not one of your services`));
  const chosen = p.get("attrs") ? p.get("attrs").split(",") : s.attrs;
  const range = p.get("range") || "6h";
  main.append(el("p", {}, "judger ", s.judger || "—", " · range ",
    ...Object.keys(rangeSeconds).map((r) => el("a", { href: "#/service?" + new URLSearchParams({ service, range }) .toString().replace(/range=[^&]*/, "range=" + r), style: "margin-right:.5em" }, r))));
  const grid = el("div", { class: "charts" });
  main.append(grid);
  const draw = async () => {
    grid.replaceChildren();
    for (const attr of chosen) {
      const box = el("div", { class: "chart" }, el("a", { href: "#/chart?" + new URLSearchParams({ service, attr, range }) }, attr));
      grid.append(box);
      const q = new URLSearchParams({ service, attr, range, op: p.get("op") || "SUM" });
      try {
        const answer = await api(seriesPath(q));
        const problems = drawChart("attr:" + attr, box, answer, 520, 200);
        for (const x of problems) box.append(el("p", { class: "note" }, x));
      } catch (e) { showError(box, e); }
    }
  };
  await draw();
  refreshTimer = setInterval(draw, 30000);
}

async function topView(p) {
  const service = p.get("service"), attr = p.get("attr"), op = p.get("op") || "SUM";
  const range = p.get("range") || "1h", n = p.get("n") || "10";
  main.replaceChildren(el("h1", {}, `Top ${n} servers · ${service} · ${attr} · ${op} · last ${range}`));
  const to = Math.floor(Date.now() / 1000);
  try {
    const answer = await api("/api/top?" + new URLSearchParams({ service, attr, op, n, from: to - (rangeSeconds[range] || 3600), to }));
    if (!answer.top.length) return main.append(el("p", { class: "note" }, "no server reported in the range"));
    const servers = answer.top.map((x) => x.server).join(",");
    main.append(el("table", { id: "top" }, el("tr", {}, el("th", {}, "server"), el("th", {}, op)),
      ...answer.top.map((x) => el("tr", {}, el("td", {}, el("a", { href: "#/chart?" + new URLSearchParams({ service, attr, op, servers: x.server, range }) }, x.server)),
                                   el("td", {}, x.value.toLocaleString())))),
      el("p", {}, el("a", { href: "#/chart?" + new URLSearchParams({ service, attr, op, servers, range }) }, "all of them on one chart")));
  } catch (e) { showError(main, e); }
}

// ---- lists ----------------------------------------------------------------------

async function servicesView() {
  main.replaceChildren(el("h1", {}, "Services"));
  try {
    const { services } = await api("/api/services");
    if (!services.length) return main.append(el("p", { class: "note" }, "Your roles own no service yet."));
    main.append(el("table", { id: "services" }, el("tr", {}, el("th", {}, "service"), el("th", {}, "judger"), el("th", {}, "attrs")),
      ...services.map((s) => el("tr", {},
        el("td", {}, el("a", { href: "#/service?" + new URLSearchParams({ service: s.service }) }, s.service)),
        el("td", {}, s.judger || "—"),
        el("td", {}, ...s.attrs.flatMap((a) => [el("a", { href: "#/chart?" + new URLSearchParams({ service: s.service, attr: a }) }, a), " "]))))));
  } catch (e) { showError(main, e); }
}

async function judgersView() {
  main.replaceChildren(el("h1", {}, "Judgers"));
  try {
    const { judgers } = await api("/api/judgers");
    main.append(el("table", { id: "judgers" }, el("tr", {}, ...["judger", "state", "address", "cpu %", "RSS MiB", "reports/s", "series", "services"].map((h) => el("th", {}, h))),
      ...judgers.map((j) => el("tr", {}, el("td", {}, j.name), el("td", {}, j.state), el("td", {}, j.address || "—"),
        el("td", {}, j.cpu_percent.toFixed(1)), el("td", {}, (j.rss_bytes / 1048576).toFixed(1)),
        el("td", {}, Math.round(j.reports_per_s)), el("td", {}, j.series), el("td", {}, j.services)))));
  } catch (e) { showError(main, e); }
}

async function healthView() {
  main.replaceChildren(el("h1", {}, "The system's health"));
  try {
    const { parts } = await api("/api/parts");
    main.append(el("table", { id: "parts" }, el("tr", {}, ...["role", "name", "state", "address", "health"].map((h) => el("th", {}, h))),
      ...parts.map((x) => el("tr", {}, el("td", {}, x.role), el("td", {}, x.name),
        el("td", { class: x.state === "gone" ? "firing" : "" }, x.state), el("td", {}, x.address), el("td", {}, x.health)))),
      el("p", {}, el("a", { href: "#/service?" + new URLSearchParams({ service: "Monitor.Judger" }) }, "Monitor.Judger"), " · ",
        el("a", { href: "#/service?" + new URLSearchParams({ service: "Monitor.Agent" }) }, "Monitor.Agent"), " · ",
        el("a", { href: "#/service?" + new URLSearchParams({ service: "Monitor.Proxy" }) }, "Monitor.Proxy"), " (if your roles own them)"));
  } catch (e) { showError(main, e); }
}

async function alarmsView() {
  main.replaceChildren(el("h1", {}, "Alarms"));
  const section = (title) => { const s = el("section", {}, el("h2", {}, title)); main.append(s); return s; };
  const now = section("Not ok now"), silences = section("Silences"), history = section("History, last 24 h"), rules = section("Rules");
  try {
    const a = await api("/api/alarms");
    if (!a.alarms.length) now.append(el("p", { class: "note" }, "Every alarm of your services is ok."));
    else now.append(el("table", { id: "alarms" }, el("tr", {}, ...["rule", "series", "state", "since", "value", "acked by", ""].map((h) => el("th", {}, h))),
      ...a.alarms.map((x) => el("tr", {}, el("td", {}, x.rule), el("td", {}, x.host ? `${x.server} (${x.host})` : x.server), el("td", { class: x.state }, x.state),
        el("td", {}, time(x.since)), el("td", {}, x.value ?? "—"), el("td", {}, x.acked_by || "—"),
        el("td", {}, x.state === "firing" && !x.acked_by
          ? el("button", { onclick: async () => { try { await post("/api/alarms/ack", { rule: x.rule, server: x.server }); render(); } catch (e) { showError(now, e); } } }, "Acknowledge")
          : "",
          el("button", { onclick: async () => { try { await post("/api/silences", { rule: x.rule, minutes: 60, comment: "from the dashboard" }); render(); } catch (e) { showError(now, e); } } }, "Silence 1 h"))))));
    rules.append(el("table", { id: "rules" }, el("tr", {}, ...["rule", "service", "attr", "when", "enabled"].map((h) => el("th", {}, h))),
      ...a.rules.map((r) => el("tr", {}, el("td", {}, r.rule), el("td", {}, r.service),
        el("td", {}, el("a", { href: "#/chart?" + new URLSearchParams({ service: r.service, attr: r.attr, range: "6h" }) }, r.attr)),
        el("td", {}, r.when), el("td", {}, r.enabled ? "yes" : "no")))));
  } catch (e) { showError(now, e); }
  try {
    const s = await api("/api/silences");
    silences.append(s.silences.length
      ? el("table", { id: "silences" }, el("tr", {}, ...["id", "matches", "until", "by", "comment", ""].map((h) => el("th", {}, h))),
          ...s.silences.map((x) => el("tr", {}, el("td", {}, x.id),
            el("td", {}, [x.rule && `rule ${x.rule}`, x.service && `service ${x.service}`, x.attr && `attr ${x.attr}`].filter(Boolean).join(", ")),
            el("td", {}, time(x.end)), el("td", {}, x.by || "—"), el("td", {}, x.comment || ""),
            el("td", {}, el("button", { onclick: async () => { await post("/api/silences/" + x.id, {}, "DELETE"); render(); } }, "Remove")))))
      : el("p", { class: "note" }, "No silence."));
  } catch (e) { showError(silences, e); }
  try {
    const h = await api("/api/alarms/history?hours=24");
    history.append(h.history.length
      ? el("table", { id: "history" }, el("tr", {}, ...["time", "rule", "server", "event", "detail"].map((x) => el("th", {}, x))),
          ...h.history.slice(0, 200).map((x) => el("tr", {}, el("td", {}, time(x.time)), el("td", {}, x.rule),
            el("td", {}, x.server < 0 ? "total" : x.server), el("td", {}, x.event), el("td", {}, x.detail))))
      : el("p", { class: "note" }, "Nothing happened."));
    if (h.judgers_missing.length) history.append(el("p", { class: "error" }, `judgers that did not answer: ${h.judgers_missing.join(", ")}`));
  } catch (e) { showError(history, e); }
  refreshTimer = setInterval(render, 30000);
}

// ---- hosts --------------------------------------------------------------------------

const hostService = (p) => p.get("service") || "Host.System";
const percent = (permyriad) => (permyriad == null ? "—" : (permyriad / 100).toFixed(1));

// Every recorded host with its CPU, memory, fullest disk and load, sortable by any column.
async function hostsView(p) {
  const service = hostService(p);
  main.replaceChildren(el("h1", {}, "Hosts"));
  let answer;
  try { answer = await api("/api/hosts?" + new URLSearchParams({ service })); } catch (e) { return showError(main, e); }
  const columns = [
    ["host", "host", (h) => h.host], ["server", "server", (h) => h.server], ["agent", "agent", (h) => h.agent],
    ["cpu_busy", "CPU busy %", (h) => h.cpu_busy], ["memory_used", "memory used %", (h) => h.memory_available == null ? null : 10000 - h.memory_available],
    ["fs_max_used", "fullest disk %", (h) => h.fs_max_used], ["load_per_core", "load per core", (h) => h.load_per_core]];
  const sort = p.get("sort") || "host";
  const descending = p.get("order") === "desc";
  const key = (columns.find((c) => c[0] === sort) || columns[0])[2];
  const rows = [...answer.hosts].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x == null || y == null) return x == null ? 1 : -1;  // hosts without the figure last
    const c = typeof x === "string" ? x.localeCompare(y) : x - y;
    return descending ? -c : c;
  });
  const header = columns.map(([name, label]) => el("th", {}, el("a", {
    href: "#/hosts?" + new URLSearchParams({ service, sort: name, order: sort === name && !descending ? "desc" : "asc" }) },
    label + (sort === name ? (descending ? " ▼" : " ▲") : ""))));
  if (!rows.length) return main.append(el("p", { class: "note" }, "No host is recorded yet: an agent records its host when it starts with a registry."));
  main.append(el("table", { id: "hosts" }, el("tr", {}, ...header),
    ...rows.map((h) => el("tr", {},
      el("td", {}, el("a", { href: "#/host?" + new URLSearchParams({ service, server: h.server, host: h.host }) }, h.host)),
      el("td", {}, h.server), el("td", { class: h.agent === "live" ? "" : "pending" }, h.agent),
      el("td", {}, percent(h.cpu_busy)), el("td", {}, percent(h.memory_available == null ? null : 10000 - h.memory_available)),
      el("td", {}, percent(h.fs_max_used)), el("td", {}, h.load_per_core == null ? "—" : (h.load_per_core / 100).toFixed(2))))),
    el("p", { class: "note" }, `means over the last five minutes; ${answer.problem ? "problem: " + answer.problem : "refreshed " + new Date().toLocaleTimeString()}`));
  refreshTimer = setInterval(render, 60000);
}

// One host on one screen: CPU, memory, load, each filesystem and each interface.
async function hostView(p) {
  const service = hostService(p), server = p.get("server"), host = p.get("host") || `server ${server}`;
  const range = p.get("range") || "6h";
  main.replaceChildren(el("h1", {}, `${host} · server ${server}`));
  let list;
  try { list = await api("/api/services"); } catch (e) { return showError(main, e); }
  const s = list.services.find((x) => x.service === service);
  if (!s) return showError(main, new Error(`${service} is not one of your services`));
  const has = (attr) => s.attrs.includes(attr);
  const charts = [["Cpu.Busy", "AVG", "CPU busy (‱)"], ["Mem.AvailablePermyriad", "LAST", "memory available (‱)"],
                  ["Mem.UsedBytes", "LAST", "memory used (bytes)"], ["Load.Avg1", "LAST", "load (hundredths)"]]
    .filter(([attr]) => has(attr));
  for (const attr of s.attrs.filter((a) => /^Fs\.[^.]+\.UsedPermyriad$/.test(a) && a !== "Fs.MaxUsedPermyriad").sort()) {
    charts.push([attr, "LAST", attr.split(".")[1] + " used (‱)"]);
  }
  for (const attr of s.attrs.filter((a) => /^Net\.[^.]+\.(In|Out)Bytes$/.test(a)).sort()) {
    charts.push([attr, "SUM", attr.slice(4).replace(".", " ") + " per minute"]);
  }
  main.append(el("p", {}, el("a", { href: "#/hosts?" + new URLSearchParams({ service }) }, "all hosts"), " · range ",
    ...Object.keys(rangeSeconds).flatMap((r) => [el("a", { href: "#/host?" + new URLSearchParams({ service, server, host, range: r }) }, r), " "])));
  const grid = el("div", { class: "charts", id: "host-charts" });
  main.append(grid);
  const draw = async () => {
    grid.replaceChildren();
    for (const [attr, op, label] of charts) {
      const box = el("div", { class: "chart" }, el("a", { href: "#/chart?" + new URLSearchParams({ service, attr, op, servers: server, range }) }, label));
      grid.append(box);
      try {
        const answer = await api(seriesPath(new URLSearchParams({ service, attr, op, servers: server, range })));
        for (const x of drawChart("host:" + attr, box, answer, 520, 180)) box.append(el("p", { class: "note" }, x));
      } catch (e) { showError(box, e); }
    }
  };
  await draw();
  refreshTimer = setInterval(draw, 30000);
}

// ---- the router -------------------------------------------------------------------

function render() {
  clearInterval(refreshTimer);
  window.monitorCharts = {};
  const { path, params } = route();
  const views = { "/services": servicesView, "/chart": chartView, "/service": serviceView, "/top": topView,
                  "/judgers": judgersView, "/alarms": alarmsView, "/health": healthView, "/hosts": hostsView,
                  "/host": hostView };
  (views[path] || servicesView)(params);
}

window.addEventListener("hashchange", render);
start();
