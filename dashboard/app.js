// Reference dashboard for the Lead CRM API. Static, no build step: every call is a cross-origin
// fetch with a bearer token, exactly as a production frontend makes it. Data is only ever put in
// the page as text (textContent), never as HTML.
"use strict";

const state = { api: "", token: "", leadsCursor: null };
const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  return node;
}

const money = (value) => value == null ? "–" : `$${Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
const number = (value) => value == null ? "–" : Number(value).toLocaleString("en-US");

function showError(message) {
  const banner = $("#error");
  banner.textContent = message;
  banner.hidden = !message;
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(state.api + path, {
      ...options,
      cache: "no-store", // the API caches server-side; the browser always asks it
      headers: { Authorization: `Bearer ${state.token}`, ...(options.body ? { "Content-Type": "application/json" } : {}) },
    });
  } catch (error) {
    // A network failure or a response the browser refused to share (CORS) looks the same here.
    throw new ApiError(0, { error: { message: `Cannot reach the API at ${state.api} (network error or this origin is not allowed)` } });
  }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function setChange(node, value, suffix = "%") {
  node.textContent = value == null ? "" : `${value > 0 ? "+" : ""}${value}${suffix}`;
  node.className = "change " + (value > 0 ? "up" : value < 0 ? "down" : "");
}

// -- charts (inline SVG) ------------------------------------------------------------------------
function drawLine(svg, labels, values) {
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const width = 720, height = 200, pad = 24;
  const max = Math.max(1, ...values.map(Number));
  const x = (i) => pad + (i * (width - 2 * pad)) / Math.max(1, values.length - 1);
  const y = (v) => height - pad - (Number(v) / max) * (height - 2 * pad);
  const axis = document.createElementNS(ns, "line");
  Object.entries({ x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: "axis" }).forEach(([k, v]) => axis.setAttribute(k, v));
  svg.append(axis);
  const path = document.createElementNS(ns, "polyline");
  path.setAttribute("class", "line");
  path.setAttribute("points", values.map((v, i) => `${x(i)},${y(v)}`).join(" "));
  path.dataset.points = String(values.length);
  svg.append(path);
  [0, labels.length - 1].forEach((i) => {
    if (i < 0) return;
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", x(i));
    text.setAttribute("y", height - 6);
    text.setAttribute("text-anchor", i === 0 ? "start" : "end");
    text.textContent = labels[i];
    svg.append(text);
  });
  const top = document.createElementNS(ns, "text");
  top.setAttribute("x", pad);
  top.setAttribute("y", 12);
  top.textContent = `max ${money(max)}`;
  svg.append(top);
}

function drawBars(svg, labels, values) {
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const width = 720, height = 200, pad = 24;
  const max = Math.max(1, ...values.map(Number));
  const slot = (width - 2 * pad) / Math.max(1, values.length);
  values.forEach((value, i) => {
    const bar = document.createElementNS(ns, "rect");
    const h = (Number(value) / max) * (height - 2 * pad);
    Object.entries({ x: pad + i * slot + 1, y: height - pad - h, width: Math.max(1, slot - 2), height: h, class: "bar" }).forEach(([k, v]) => bar.setAttribute(k, v));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${labels[i]}: ${value} leads`;
    bar.append(title);
    svg.append(bar);
  });
  svg.dataset.bars = String(values.length);
}

// -- panels ---------------------------------------------------------------------------------------
async function loadStats() {
  const stats = await api(`/admin/stats?period=${$("#stats-period").value}`);
  $("#revenue-total").textContent = money(stats.revenue.total);
  setChange($("#revenue-change"), stats.revenue.change);
  $("#revenue-forecast").textContent = money(stats.revenue.forecast);
  $("#cpa-average").textContent = money(stats.cpa.average);
  setChange($("#cpa-change"), stats.cpa.change);
  $("#leads-count").textContent = number(stats.conversion.leads);
  $("#conversions-count").textContent = number(stats.conversion.conversions);
  $("#conversion-rate").textContent = `${stats.conversion.rate}% rate`;
  $("#velocity").textContent = stats.conversion.velocity ?? "–";
  $("#agents-online").textContent = `${stats.agents.online} / ${stats.agents.total}`;
  $("#utilization").textContent = `${stats.agents.utilization}% utilised`;
  drawLine($("#revenue-chart"), stats.revenue.trend.map((p) => p.date), stats.revenue.trend.map((p) => p.revenue));
  $("#funnel").replaceChildren(
    ...Object.entries(stats.conversion.funnel).map(([name, count]) => el("li", { id: `funnel-${name}` }, `${name}: ${count}`)),
  );
}

async function loadAnalytics() {
  const data = await api(`/admin/analytics?period=${$("#analytics-period").value}`);
  drawBars($("#analytics-chart"), data.labels, data.leads);
  $("#insights").replaceChildren(...data.insights.map((line) => el("li", {}, line)));
}

const DISPOSITIONS = ["new", "contacted", "qualified", "closed", "lost"];

function leadRow(lead) {
  const select = el("select", { class: "disposition", "data-lead-id": lead.lead_id });
  for (const name of DISPOSITIONS) select.append(el("option", { value: name, selected: name === lead.disposition }, name));
  select.addEventListener("change", () => moveLead(lead, select));
  const name = [lead.first_name, lead.last_name].filter(Boolean).join(" ") || lead.email || lead.phone;
  return el("tr", { "data-lead-id": lead.lead_id },
    el("td", {}, lead.created_at.slice(0, 10)), el("td", {}, name), el("td", {}, lead.vendor_code),
    el("td", {}, lead.campaign_source ?? ""), el("td", {}, lead.assigned_agent ?? ""), el("td", {}, money(lead.lead_value)),
    el("td", {}, select));
}

async function moveLead(lead, select) {
  const body = { version: lead.version, disposition: select.value };
  if (select.value === "closed") {
    const amount = window.prompt("Sale amount", "1000.00");
    if (amount === null) { select.value = lead.disposition; return; }
    body.sale_amount = Number(amount);
  }
  try {
    const updated = await api(`/leads/${lead.lead_id}`, { method: "PATCH", body: JSON.stringify(body) });
    Object.assign(lead, updated);
    select.closest("tr").dataset.updated = "true";
    showError("");
    await refreshAfterChange();
  } catch (error) {
    select.value = lead.disposition;
    const allowed = error.body?.error?.details?.find((d) => d.allowed)?.allowed;
    showError(`${error.message}${allowed ? ` (allowed: ${allowed.join(", ")})` : ""}`);
  }
}

// Stats are kept from lead events, so they follow a change within moments (at once locally, a
// second or two in AWS): refresh now, then again shortly after.
const REFRESH_DELAYS_MS = [0, 1500, 4000];

async function refreshAfterChange() {
  for (const delay of REFRESH_DELAYS_MS) {
    await new Promise((resolve) => setTimeout(resolve, delay));
    await Promise.all([loadStats(), loadAnalytics(), loadAgencies()]);
  }
}

function leadQuery() {
  const params = new URLSearchParams({ limit: "25" });
  const filters = { q: "#filter-q", vendor: "#filter-vendor", campaign: "#filter-campaign", disposition: "#filter-disposition" };
  for (const [name, selector] of Object.entries(filters)) {
    const value = $(selector).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

async function loadLeads(more = false) {
  const params = leadQuery();
  if (more && state.leadsCursor) params.set("cursor", state.leadsCursor);
  const page = await api(`/leads?${params}`);
  const body = $("#leads-table tbody");
  if (!more) body.replaceChildren();
  body.append(...page.data.map(leadRow));
  state.leadsCursor = page.pagination.cursor;
  $("#leads-more").hidden = !page.pagination.hasMore;
}

async function loadAgencies() {
  const page = await api("/agencies?limit=200");
  $("#agencies-table tbody").replaceChildren(...page.data.map((agency) => {
    const p = agency.performance;
    const bar = el("span", { class: "progress", title: `${p.goalProgress}%` }, el("span", {}));
    bar.firstChild.style.width = `${Math.min(100, Number(p.goalProgress))}%`;
    return el("tr", { "data-vendor": agency.vendor_code },
      el("td", {}, `${agency.name} (${agency.vendor_code})`), el("td", { class: "grade" }, p.grade ?? "–"),
      el("td", {}, number(p.leads)),
      el("td", { class: "goal" }, bar, ` ${p.leadsThisMonth} / ${p.monthlyGoal}`),
      el("td", {}, `${p.conversionRate}%`), el("td", {}, money(p.avgCPA)), el("td", {}, p.topCampaign ?? "–"));
  }));
}

async function signIn() {
  state.api = $("#api").value.replace(/\/$/, "");
  state.token = $("#token").value.trim();
  sessionStorage.setItem("crm.api", state.api);
  sessionStorage.setItem("crm.token", state.token);
  try {
    await loadStats();
    showError("");
    $("#app").hidden = false;
    $("#logout").hidden = false;
    $("#who").textContent = "signed in";
    await Promise.all([loadAnalytics(), loadLeads(), loadAgencies()]);
  } catch (error) {
    $("#app").hidden = true;
    $("#who").textContent = "";
    showError(error.status === 403 ? "This dashboard is for admins and managers." : error.message);
  }
}

function wire() {
  const params = new URLSearchParams(location.search);
  $("#api").value = params.get("api") || sessionStorage.getItem("crm.api") || "http://127.0.0.1:3000";
  $("#token").value = sessionStorage.getItem("crm.token") || "";
  $("#login-form").addEventListener("submit", (event) => { event.preventDefault(); signIn(); });
  $("#logout").addEventListener("click", () => { sessionStorage.clear(); location.reload(); });
  $("#stats-period").addEventListener("change", () => loadStats().catch((e) => showError(e.message)));
  $("#analytics-period").addEventListener("change", () => loadAnalytics().catch((e) => showError(e.message)));
  $("#lead-filters").addEventListener("submit", (event) => { event.preventDefault(); loadLeads().catch((e) => showError(e.message)); });
  $("#leads-more").addEventListener("click", () => loadLeads(true).catch((e) => showError(e.message)));
}

wire();
