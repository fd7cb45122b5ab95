// microkube dashboard: read-only views over the API, through the dashboard's /k8s proxy.
// Every value from the cluster goes into the page as text (never as HTML).
"use strict";

const $ = (sel) => document.querySelector(sel);
let current = "nodes";
let timer = null;
let logsOf = null;

async function api(path, asText) {
  const resp = await fetch("k8s" + path, { credentials: "same-origin" });
  if (resp.status === 401) { showLogin(); throw new Error("signed out"); }
  if (!resp.ok) {
    let msg = resp.status + " " + resp.statusText;
    try { const body = await resp.json(); if (body.message) msg = body.message; } catch (e) { /* text */ }
    throw new Error(msg);
  }
  return asText ? resp.text() : resp.json();
}

function age(ts) {
  if (!ts) return "";
  const s = Math.max(0, (Date.now() - Date.parse(ts)) / 1000);
  if (s < 120) return Math.round(s) + "s";
  if (s < 7200) return Math.round(s / 60) + "m";
  if (s < 172800) return Math.round(s / 3600) + "h";
  return Math.round(s / 86400) + "d";
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

function fill(tableSel, rows) {
  const body = $(tableSel + " tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}

function showError(err) { $("#error").textContent = err ? String(err.message || err) : ""; }

// --- views ---------------------------------------------------------------------
async function loadNodes() {
  const list = await api("/api/v1/nodes");
  fill("#nodes-table", list.items.map((n) => {
    const ready = (n.status.conditions || []).find((c) => c.type === "Ready");
    const ok = ready && ready.status === "True";
    const roles = Object.keys(n.metadata.labels || {})
      .filter((k) => k.startsWith("node-role.kubernetes.io/"))
      .map((k) => k.split("/")[1]).join(",");
    const ip = (n.status.addresses || []).find((a) => a.type === "InternalIP");
    return [cell(n.metadata.name), cell(ok ? "Ready" : "NotReady", ok ? "ok" : "bad"),
      cell(roles || "<none>"), cell(n.status.nodeInfo.kubeletVersion), cell(ip ? ip.address : ""),
      cell(n.status.capacity.cpu), cell(n.status.capacity.memory), cell(age(n.metadata.creationTimestamp))];
  }));
}

function podStatus(p) {
  if (p.metadata.deletionTimestamp) return "Terminating";
  for (const cs of p.status.containerStatuses || []) {
    if (cs.state.waiting && cs.state.waiting.reason) return cs.state.waiting.reason;
    if (cs.state.terminated && cs.state.terminated.reason && p.status.phase !== "Succeeded") {
      return cs.state.terminated.reason;
    }
  }
  return p.status.phase;
}

async function loadPods() {
  const ns = $("#pods-namespace").value;
  const list = await api(ns ? `/api/v1/namespaces/${encodeURIComponent(ns)}/pods` : "/api/v1/pods");
  fill("#pods-table", list.items.map((p) => {
    const statuses = p.status.containerStatuses || [];
    const ready = statuses.filter((c) => c.ready).length + "/" + (p.spec.containers || []).length;
    const restarts = statuses.reduce((n, c) => n + c.restartCount, 0);
    const status = podStatus(p);
    const name = cell("");
    const link = document.createElement("a");
    link.textContent = p.metadata.name;
    link.className = "pod-link";
    link.addEventListener("click", () => openLogs(p));
    name.append(link);
    return [cell(p.metadata.namespace), name, cell(ready),
      cell(status, status === "Running" || status === "Succeeded" ? "ok" : "warn"),
      cell(restarts), cell(p.spec.nodeName), cell(p.status.podIP), cell(age(p.metadata.creationTimestamp))];
  }));
  const nsList = await api("/api/v1/namespaces");
  const select = $("#pods-namespace");
  const have = new Set(Array.from(select.options).map((o) => o.value));
  for (const n of nsList.items) {
    if (!have.has(n.metadata.name)) {
      const o = document.createElement("option");
      o.value = o.textContent = n.metadata.name;
      select.append(o);
    }
  }
}

function openLogs(pod) {
  logsOf = pod;
  $("#logs-pod").textContent = pod.metadata.namespace + "/" + pod.metadata.name;
  const sel = $("#logs-container");
  sel.replaceChildren(...(pod.spec.containers || []).map((c) => {
    const o = document.createElement("option");
    o.value = o.textContent = c.name;
    return o;
  }));
  show("logs");
}

async function loadLogs() {
  if (!logsOf) return;
  const ns = encodeURIComponent(logsOf.metadata.namespace);
  const name = encodeURIComponent(logsOf.metadata.name);
  const container = encodeURIComponent($("#logs-container").value);
  const text = await api(`/api/v1/namespaces/${ns}/pods/${name}/log?tailLines=500&container=${container}`, true);
  const pre = $("#logs-text");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = text || "(no output yet)";
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

async function loadEvents() {
  const list = await api("/api/v1/events?limit=500");
  const when = (e) => e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp;
  const items = list.items.sort((a, b) => Date.parse(when(b)) - Date.parse(when(a))).slice(0, 200);
  fill("#events-table", items.map((e) => [
    cell(age(when(e))), cell(e.type, e.type === "Warning" ? "warn" : ""), cell(e.reason),
    cell(`${e.involvedObject.kind.toLowerCase()}/${e.involvedObject.name}` +
      (e.involvedObject.namespace ? ` (${e.involvedObject.namespace})` : "")),
    cell(e.message)]));
}

async function loadAddons() {
  let rows = [];
  try {
    const cm = await api("/api/v1/namespaces/kube-system/configmaps/microkube-addons");
    rows = JSON.parse((cm.data || {})["addons.json"] || "[]");
  } catch (err) {
    if (!String(err.message).includes("not found")) throw err;
  }
  rows.sort((a, b) => (b.enabled - a.enabled) || a.name.localeCompare(b.name));
  fill("#addons-table", rows.map((a) => [cell(a.name), cell(a.repository),
    cell(a.enabled ? "enabled" : "disabled", a.enabled ? "ok" : ""), cell(a.version), cell(a.description)]));
}

const loaders = { nodes: loadNodes, pods: loadPods, logs: loadLogs, events: loadEvents, addons: loadAddons };

async function refresh() {
  try {
    await loaders[current]();
    showError(null);
  } catch (err) {
    if (err.message !== "signed out") showError(err);
  }
}

function show(view) {
  current = view;
  document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== "view-" + view; });
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.view === view));
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, 5000);
}

// --- session --------------------------------------------------------------------
function showLogin() {
  clearInterval(timer);
  $("#login").hidden = false;
  $("#nav").hidden = $("#session").hidden = true;
  document.querySelectorAll(".view").forEach((v) => { v.hidden = true; });
}

function showApp(user) {
  $("#login").hidden = true;
  $("#nav").hidden = $("#session").hidden = false;
  $("#user").textContent = user;
  show("nodes");
}

async function login(ev) {
  ev.preventDefault();
  $("#login-error").textContent = "";
  const resp = await fetch("login", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token: $("#login-token").value.trim() }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) { $("#login-error").textContent = body.error || resp.statusText; return; }
  $("#login-token").value = "";
  showApp(body.user);
}

async function start() {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", async () => {
    await fetch("logout", { method: "POST", credentials: "same-origin" });
    showLogin();
  });
  $("#logs-back").addEventListener("click", () => show("pods"));
  $("#logs-container").addEventListener("change", refresh);
  $("#pods-namespace").addEventListener("change", refresh);
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => show(t.dataset.view)));
  const resp = await fetch("whoami", { credentials: "same-origin" });
  if (resp.ok) showApp((await resp.json()).user); else showLogin();
}

start();
