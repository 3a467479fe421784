// Reference dashboard for the Lead CRM API. Static, no build step, nothing loaded from elsewhere:
// every call is a cross-origin fetch with a bearer token, exactly as a production frontend makes it,
// and the charts are inline SVG. Data is only ever put in the page as text (textContent), never as
// HTML.
//
// Every number (and every value holding a digit) is written by `value()`, which marks its element
// with data-field (the path of the value in the JSON answer of the nearest data-url above it) and
// data-format (how it is written). The browser test reads every such element back against the API.
// After sign-in every panel loads at once (one round of parallel requests); when they have all
// rendered, body[data-ready] is "all" and the performance mark "dashboard-ready" is set (and
// "sign-in" when the form was sent, so the wait for Cognito and the API is apart from the typing).
//
// Configuration: config.json beside this page (`crm serve --dashboard` serves it for the local
// stack, `crm dashboard --stack NAME` writes it for a deployed one) names the API, the Cognito
// endpoint of the staff user pool and its dashboard client.
//
// Sign-in: email and password, sent to Cognito (InitiateAuth, USER_PASSWORD_AUTH); a first sign-in
// with a temporary password answers the NEW_PASSWORD_REQUIRED challenge. The ID token is the bearer
// token of every API call. The tokens live in `session`, a variable of this script, and nowhere
// else (no storage, no cookie): a reload or a closed tab signs out. The ID token is refreshed with
// the refresh token shortly before it expires; "Sign out" forgets them and asks Cognito to revoke
// them (GlobalSignOut).
"use strict";

const state = { leadsCursor: null, range: { period: "30d" }, shown: null, mayDecide: false, decidedReturns: new Set() };
let config = null; // config.json: { api, cognitoEndpoint, clientId }
let session = null; // { idToken, accessToken, refreshToken, claims, timer, refreshing }
let challenge = null; // a NEW_PASSWORD_REQUIRED challenge being answered: { email, username, session }
const $ = (selector) => document.querySelector(selector);
const SVG = "http://www.w3.org/2000/svg";

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

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

// -- formats: how each kind of value is written (null is "–": no denominator, no value) ----------
const decimal = (v) => Number(v).toLocaleString("en-US", { maximumFractionDigits: 4 });
const FORMATS = {
  money: (v) => `$${Number(v).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`,
  number: decimal,
  percent: (v) => `${decimal(v)}%`,
  change: (v) => `${Number(v) > 0 ? "+" : ""}${decimal(v)}%`,
  ratio: (v) => `${decimal(v)}×`,
  days: (v) => `${decimal(v)} d`,
  text: (v) => String(v),
};
const NONE = "–";

/** Fills `node` with the value at `path` of `data` (a JSON answer), marked for the test. */
function value(node, data, path, format) {
  const found = path.split(".").reduce((at, key) => (at == null ? undefined : at[key]), data);
  node.textContent = found == null ? NONE : FORMATS[format](found);
  node.dataset.field = path;
  node.dataset.format = format;
  if (format === "change") node.classList.add(found > 0 ? "up" : found < 0 ? "down" : "flat");
  return node;
}

const span = (data, path, format, className = "") => value(el("span", { class: className }), data, path, format);
const cell = (data, path, format) => value(el("td"), data, path, format);
const has = (data, path) => path.split(".").reduce((at, key) => (at == null ? undefined : at[key]), data) !== undefined;

/** Marks `node` as showing the answer of `path`: set once it is rendered, so tests can wait on it. */
function rendered(node, path) {
  node.dataset.url = path;
}

// -- the API ----------------------------------------------------------------------------------------
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

/** Thrown when the answer arrives after sign-out (or another sign-in): nothing is shown of it. */
class SignedOut extends Error {}

async function call(path, options = {}, retried = false) {
  const current = session;
  if (!current) throw new SignedOut("signed out");
  let response;
  try {
    response = await fetch(config.api + path, {
      ...options,
      cache: "no-store", // the API caches server-side; the browser always asks it
      headers: { Authorization: `Bearer ${current.idToken}`, ...(options.body ? { "Content-Type": "application/json" } : {}) },
    });
  } catch (error) {
    if (session !== current) throw new SignedOut("signed out");
    // A network failure or a response the browser refused to share (CORS) looks the same here.
    throw new ApiError(0, { error: { message: `Cannot reach the API at ${config.api} (network error or this origin is not allowed)` } });
  }
  if (session !== current) throw new SignedOut("signed out");
  // An ID token that expired meanwhile (a sleeping laptop delays the timed refresh): refresh, retry once.
  if (response.status === 401 && !retried && current.refreshToken) {
    await refreshSession(current);
    return call(path, options, true);
  }
  return response;
}

async function api(path, options = {}) {
  const current = session;
  const response = await call(path, options);
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (session !== current) throw new SignedOut("signed out");
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// A panel shows the answer to its latest request only: when the range or the report changes
// while an earlier request is still out, that earlier answer, arriving later, is dropped.
const latestRequest = {};

async function latest(panel, path) {
  return newest(panel, () => api(path));
}

/** The same guard for a panel made of several requests: `load` resolves to all of its answers. */
async function newest(panel, load) {
  const ticket = (latestRequest[panel] = (latestRequest[panel] || 0) + 1);
  const body = await load();
  return ticket === latestRequest[panel] ? body : null;
}

/** Every page of a paginated list: [[path, page], ...], following `pagination.cursor`. */
async function allPages(path) {
  const [route, query = ""] = path.split("?");
  const pages = [];
  for (let at = path; at; ) {
    const page = await api(at);
    pages.push([at, page]);
    const { hasMore, cursor } = page.pagination;
    at = hasMore && cursor ? `${route}?${new URLSearchParams({ ...Object.fromEntries(new URLSearchParams(query)), cursor })}` : null;
  }
  return pages;
}

// -- range ------------------------------------------------------------------------------------------

function rangeQuery() {
  const { period, from, to } = state.range;
  return period ? new URLSearchParams({ period }) : new URLSearchParams({ from, to });
}

function readRange() {
  const period = $("#range-period").value;
  const custom = period === "custom";
  $("#range-from").disabled = !custom;
  $("#range-to").disabled = !custom;
  if (!custom) return { period };
  // By default the days the stats show now (the API's days, in its business time zone).
  if (!$("#range-to").value) $("#range-to").value = state.shown?.to ?? "";
  if (!$("#range-from").value) $("#range-from").value = state.shown?.from ?? "";
  return { from: $("#range-from").value, to: $("#range-to").value };
}

// -- charts (inline SVG) -----------------------------------------------------------------------------
const WIDTH = 720, HEIGHT = 200, PAD = 24;

/** The first and last labels under a chart: [[path, x], [path, x]]. */
function axisLabels(chart, data, ends) {
  ends.forEach(([path, x], n) => {
    const label = svg("text", { x, y: HEIGHT - 6, "text-anchor": n === 0 ? "start" : "end" });
    chart.append(value(label, data, path, "text"));
  });
}

function drawLine(chart, data, points, key, labelOf) {
  const values = points.map((point) => Number(point[key]));
  const max = Math.max(1, ...values);
  const x = (i) => PAD + (i * (WIDTH - 2 * PAD)) / Math.max(1, values.length - 1);
  const y = (v) => HEIGHT - PAD - (v / max) * (HEIGHT - 2 * PAD);
  const line = svg("polyline", { class: "line", points: values.map((v, i) => `${x(i)},${y(v)}`).join(" ") });
  line.dataset.points = String(values.length);
  chart.replaceChildren(svg("line", { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, class: "axis" }), line);
  const last = values.length - 1;
  if (values.length) axisLabels(chart, data, [[labelOf(0), x(0)], [labelOf(last), x(last)]]);
}

function drawBars(chart, data) {
  const values = data.leads.map(Number);
  const max = Math.max(1, ...values);
  const slot = (WIDTH - 2 * PAD) / Math.max(1, values.length);
  chart.replaceChildren(svg("line", { x1: PAD, y1: HEIGHT - PAD, x2: WIDTH - PAD, y2: HEIGHT - PAD, class: "axis" }));
  values.forEach((count, i) => {
    const h = (count / max) * (HEIGHT - 2 * PAD);
    const partial = data.partial?.[i] ? " partial" : "";
    const bar = svg("rect", { x: PAD + i * slot + 1, y: HEIGHT - PAD - h, width: Math.max(1, slot - 2), height: h, class: `bar${partial}` });
    bar.append(svg("title", {}, `${data.labels[i]}: ${count} leads${partial ? " (so far)" : ""}`));
    chart.append(bar);
  });
  const last = values.length - 1;
  if (values.length) axisLabels(chart, data, [["labels.0", PAD], [`labels.${last}`, WIDTH - PAD]]);
  chart.dataset.bars = String(values.length);
}

// -- tables: columns that show only when the answer has them ------------------------------------------
/** Fills `table` from `rows` (at `prefix` in `data`) with the columns [key, title, format] present. */
function fillTable(table, data, prefix, rows, columns) {
  const shown = columns.filter(([key]) => rows.some((row) => has(row, key)));
  table.tHead.rows[0].replaceChildren(...shown.map(([, title]) => el("th", {}, title)));
  table.tBodies[0].replaceChildren(
    ...rows.map((row, i) => el("tr", {}, ...shown.map(([key, , format]) => cell(data, `${prefix}.${i}.${key}`, format)))),
  );
  return shown;
}

// -- panels -------------------------------------------------------------------------------------------
function changeLine(node, data, path, words) {
  node.replaceChildren();
  if (has(data, path)) node.append(span(data, path, "change", "change"), ` ${words}`);
}

async function loadStats() {
  const path = `/admin/stats?${rangeQuery()}`;
  const stats = await latest("stats", path);
  if (!stats) return;
  state.shown = stats.period;
  const panel = $("#stats-panel");
  const period = $("#stats-period");
  period.replaceChildren(span(stats, "period.from", "text"), " to ", span(stats, "period.to", "text"), " (", span(stats, "period.days", "number"), " days)");
  if (stats.period.partial) period.append(el("span", { class: "partial-tag" }, "today not over: changes compare like for like"));

  value($("#revenue-total"), stats, "revenue.total", "money");
  changeLine($("#revenue-change"), stats, "revenue.change", "vs previous");
  value($("#revenue-forecast"), stats, "revenue.forecast", "money");
  const range = $("#revenue-forecast-range");
  range.replaceChildren();
  if (stats.revenue.forecastRange) {
    range.append(span(stats, "revenue.forecastRange.low", "money"), " to ", span(stats, "revenue.forecastRange.high", "money"),
      " · ", span(stats, "revenue.forecastRange.method", "text"));
  }

  $("#card-sales").hidden = !stats.sales;
  $("#card-return").hidden = !stats.sales;
  if (stats.sales) {
    value($("#sales-total"), stats, "sales.total", "money");
    changeLine($("#sales-change"), stats, "sales.change", "vs previous");
    value($("#return-on-spend"), stats, "sales.returnOnSpend", "ratio");
    changeLine($("#return-on-spend-change"), stats, "sales.returnOnSpendChange", "vs previous");
  }

  value($("#cpa-average"), stats, "cpa.average", "money");
  changeLine($("#cpa-change"), stats, "cpa.change", "vs previous");
  value($("#leads-count"), stats, "conversion.leads", "number");
  value($("#conversion-rate"), stats, "conversion.rate", "percent");
  const converted = $("#converted-count");
  converted.replaceChildren();
  if (has(stats, "conversion.converted")) converted.append(span(stats, "conversion.converted", "number"), " of these leads closed");
  changeLine($("#conversion-change"), stats, "conversion.change", "vs previous");
  value($("#conversions-count"), stats, "conversion.conversions", "number");
  value($("#velocity"), stats, "conversion.velocity", "days");
  $("#agents-online").replaceChildren(span(stats, "agents.online", "number"), " / ", span(stats, "agents.total", "number"));
  $("#utilization").replaceChildren(span(stats, "agents.utilization", "percent"), " utilised");

  drawLine($("#revenue-chart"), stats, stats.revenue.trend, "revenue", (i) => `revenue.trend.${i}.date`);
  $("#funnel").replaceChildren(
    ...Object.keys(stats.conversion.funnel).map((name) => el("li", { id: `funnel-${name}` }, `${name}: `, span(stats, `conversion.funnel.${name}`, "number"))),
  );
  fillTable($("#performers-table"), stats, "agents.topPerformers", stats.agents.topPerformers, [
    ["name", "Agent", "text"], ["leads", "Leads", "number"], ["conversions", "Conversions", "number"],
    ["converted", "Converted", "number"], ["conversionRate", "Rate", "percent"], ["sales", "Sales", "money"],
  ]);
  fillTable($("#cpa-table"), stats, "cpa.breakdown", stats.cpa.breakdown, [
    ["campaign", "Campaign", "text"], ["leads", "Leads", "number"], ["revenue", "Spend", "money"],
    ["conversions", "Conversions", "number"], ["cpa", "CPA", "money"], ["converted", "Converted", "number"],
    ["conversionRate", "Cohort rate", "percent"], ["sales", "Sales", "money"], ["returnOnSpend", "Return on spend", "ratio"],
  ]);
  rendered(panel, path);
}

async function loadAnalytics() {
  const path = `/admin/analytics?${rangeQuery()}`;
  const data = await latest("analytics", path);
  if (!data) return;
  $("#analytics-granularity").replaceChildren(`by ${data.granularity}`);
  drawBars($("#analytics-chart"), data);
  $("#insights").replaceChildren(...data.insights.map((_, i) => value(el("li"), data, `insights.${i}`, "text")));
  const series = [
    ["labels", "Period", "text"], ["leads", "Leads", "number"], ["revenue", "Spend", "money"],
    ["sales", "Sales", "money"], ["conversions", "Closed", "number"], ["converted", "Converted", "number"],
  ].filter(([key]) => Array.isArray(data[key]));
  const table = $("#analytics-table");
  table.tHead.rows[0].replaceChildren(...series.map(([, title]) => el("th", {}, title)), el("th"));
  table.tBodies[0].replaceChildren(...data.labels.map((_, i) => el("tr", { class: data.partial?.[i] ? "partial" : "" },
    ...series.map(([key, , format]) => cell(data, `${key}.${i}`, format)), el("td", {}, data.partial?.[i] ? "so far" : ""))));
  rendered($("#analytics-panel"), path);
}

async function loadAgents() {
  const path = "/agents";
  const page = await api(path);
  $("#agents-table tbody").replaceChildren(...page.data.map((agent, i) => {
    const at = `data.${i}`;
    return el("tr", { "data-agent": agent.user_id },
      el("td", {}, span(page, `${at}.name`, "text"), " ", span(page, `${at}.user_id`, "text", "muted")),
      el("td", { class: `availability ${agent.availability}` }, span(page, `${at}.availability`, "text")),
      el("td", {}, span(page, `${at}.open_leads`, "number"), " / ", span(page, `${at}.capacity`, "number")),
      cell(page, `${at}.utilization`, "percent"), cell(page, `${at}.leads`, "number"),
      cell(page, `${at}.conversions`, "number"), cell(page, `${at}.conversion_rate`, "percent"), cell(page, `${at}.sales`, "money"));
  }));
  rendered($("#agents-panel"), path);
}

const AGENCY_COLUMNS = [
  ["grade", "Grade", "text"], ["leads", "Leads (90 d)", "number"], ["trend.change", "Leads vs previous 30 d", "change"],
  ["converted", "Converted", "number"], ["conversionRate", "Conversion", "percent"], ["revenue", "Spend", "money"],
  ["avgCPA", "Avg CPA", "money"], ["sales", "Sales", "money"], ["returnOnSpend", "Return on spend", "ratio"],
  ["averageQuality", "Quality", "number"], ["topCampaign", "Top campaign", "text"], ["campaignROI", "Its ROI", "percent"],
];

function insightList(page, at, kind) {
  const lines = page.data[at].insights[kind];
  return el("div", { class: "insight" }, el("strong", {}, kind),
    el("ul", {}, ...lines.map((_, n) => value(el("li"), page, `data.${at}.insights.${kind}.${n}`, "text"))));
}

async function loadAgencies() {
  const path = "/agencies?limit=200";
  const page = await api(path);
  const shown = AGENCY_COLUMNS.filter(([key]) => page.data.some((agency) => has(agency.performance, key)));
  $("#agencies-table thead tr").replaceChildren(
    el("th", {}, "Agency"), el("th", {}, "Goal this month"), ...shown.map(([, title]) => el("th", {}, title)));
  $("#agencies-table tbody").replaceChildren(...page.data.flatMap((agency, i) => {
    const at = `data.${i}`;
    const p = agency.performance;
    const bar = el("span", { class: "progress" }, el("span", {}));
    bar.firstChild.style.width = `${Math.min(100, Number(p.goalProgress))}%`;
    const row = el("tr", { "data-vendor": agency.vendor_code },
      el("td", {}, span(page, `${at}.name`, "text"), " (", span(page, `${at}.vendor_code`, "text"), ")"),
      el("td", { class: "goal" }, bar, " ", span(page, `${at}.performance.leadsThisMonth`, "number"), " / ",
        span(page, `${at}.performance.monthlyGoal`, "number"), " (", span(page, `${at}.performance.goalProgress`, "percent"), ")"),
      ...shown.map(([key, , format]) => cell(page, `${at}.performance.${key}`, format)));
    const insights = el("tr", { class: "insights", "data-vendor-insights": agency.vendor_code },
      el("td", { colSpan: 2 + shown.length }, ...["strengths", "opportunities", "recommendations"].map((kind) => insightList(page, i, kind))));
    return [row, insights];
  }));
  rendered($("#agencies-panel"), path);
}

// Report fields by name: money, rates (percent) and return on spend (a ratio); other numbers as counts.
const REPORT_FORMATS = { revenue: "money", sales: "money", cpa: "money", spend: "money", return_on_spend: "ratio" };
const reportFormat = (key, sample) =>
  REPORT_FORMATS[key] || (key.endsWith("_rate") ? "percent" : typeof sample === "string" ? "text" : "number");

// Empty dates leave the API its defaults (the 30 days ending today, in the business time zone);
// once answered, the inputs show the days the report covers.
function reportQuery(format) {
  const params = new URLSearchParams();
  if ($("#report-from").value) params.set("from", $("#report-from").value);
  if ($("#report-to").value) params.set("to", $("#report-to").value);
  if (format) params.set("format", format);
  return `/reports/${$("#report-kind").value}${params.size ? `?${params}` : ""}`;
}

async function loadReport() {
  const path = reportQuery();
  const report = await latest("report", path);
  if (!report) return;
  $("#report-from").value = report.from;
  $("#report-to").value = report.to;
  const keys = report.rows.length ? Object.keys(report.rows[0]) : [];
  const columns = keys.map((key) => [key, key, reportFormat(key, report.rows.find((row) => row[key] != null)?.[key])]);
  const table = $("#report-table");
  fillTable(table, report, "rows", report.rows, columns);
  table.tFoot.replaceChildren(el("tr", { class: "totals" }, ...columns.map(([key], n) => {
    if (has(report.totals, key)) return cell(report, `totals.${key}`, reportFormat(key, report.totals[key]));
    return el("td", {}, n === 0 ? "totals" : "");
  })));
  rendered(table, path);
}

/** The CSV form of the report shown: fetched with the token (a link cannot carry it), then saved. */
async function downloadReport() {
  const response = await call(reportQuery("csv"));
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { href: url, download: `${$("#report-kind").value}-${$("#report-from").value}-${$("#report-to").value}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// -- pending returns ------------------------------------------------------------------------------
// The API lists returns per agency (GET /agencies/{code}/returns): the panel asks every agency for
// its pending ones and shows them together, newest first. Each row keeps the path of the answer it
// comes from. Only an admin may decide (PATCH /leads/{id}/return): the buttons show when the ID
// token's `cognito:groups` holds "admin" (for display only: the API checks the role of every
// call). After a decision the list is read again. It comes from an index, which in DynamoDB may still
// say "pending" for a moment after the decision: a return known decided (the PATCH said so, or
// said it was already) is left out. A decided return is never pending again.

const RETURN_COLUMNS = [
  ["lead_id", "Lead", "text"], ["vendor_code", "Vendor", "text"], ["reason_code", "Reason", "text"],
  ["note", "Note", "text"], ["requested_at", "Requested", "text"], ["credit", "Credit", "money"],
];

function returnsMessage(message) {
  const node = $("#returns-message");
  node.textContent = message;
  node.hidden = !message;
}

async function loadReturns() {
  const found = await newest("returns", async () => {
    const agencies = await allPages("/agencies?limit=200");
    const codes = agencies.flatMap(([, page]) => page.data.map((agency) => agency.vendor_code));
    const pages = await Promise.all(codes.map((code) => allPages(`/agencies/${encodeURIComponent(code)}/returns?status=pending&limit=200`)));
    return { mayDecide: state.mayDecide, pages: pages.flat() };
  });
  if (!found) return;
  const rows = found.pages.flatMap(([path, page]) => page.data.map((entry, i) => ({ path, page, entry, i })))
    .filter(({ entry }) => !state.decidedReturns.has(entry.lead_id));
  rows.sort((a, b) => (a.entry.requested_at < b.entry.requested_at ? 1 : a.entry.requested_at > b.entry.requested_at ? -1 : 0));
  // A pending return has no credit yet (it is set on approval): the column shows once one has.
  const shown = RETURN_COLUMNS.filter(([key]) => key !== "credit" || rows.some(({ entry }) => entry.credit != null));
  $("#returns-table thead tr").replaceChildren(...shown.map(([, title]) => el("th", {}, title)), ...(found.mayDecide ? [el("th", {}, "Decision")] : []));
  $("#returns-table tbody").replaceChildren(...rows.map(({ path, page, entry, i }) => {
    const row = el("tr", { "data-lead-id": entry.lead_id, "data-vendor": entry.vendor_code, "data-url": path },
      ...shown.map(([key, , format]) => cell(page, `data.${i}.${key}`, format)));
    if (found.mayDecide) {
      const buttons = [["approved", "Approve"], ["rejected", "Reject"]].map(([status, label]) => {
        const button = el("button", { type: "button", class: `decide ${status}` }, label);
        button.addEventListener("click", () => decideReturn(entry, status, buttons));
        return button;
      });
      row.append(el("td", { class: "decision" }, ...buttons));
    }
    return row;
  }));
  $("#returns-readonly").hidden = found.mayDecide;
  $("#returns-table").hidden = rows.length === 0;
  $("#returns-empty").hidden = rows.length > 0;
  rendered($("#returns-panel"), "/agencies?limit=200"); // the agencies asked; each row has its own
}

async function decideReturn(entry, status, buttons) {
  buttons.forEach((button) => { button.disabled = true; });
  const verb = status === "approved" ? "approve" : "reject";
  try {
    await api(`/leads/${encodeURIComponent(entry.lead_id)}/return`, { method: "PATCH", body: JSON.stringify({ status }) });
    state.decidedReturns.add(entry.lead_id);
    returnsMessage("");
  } catch (error) {
    if (error instanceof SignedOut) return;
    // E.g. 409 RETURN_ALREADY_DECIDED: decided elsewhere since the list was read.
    if (error.body?.error?.code === "RETURN_ALREADY_DECIDED") state.decidedReturns.add(entry.lead_id);
    returnsMessage(`Could not ${verb} the return of lead ${entry.lead_id}: ${error.message}`);
  }
  try {
    await loadReturns();
  } catch (error) {
    if (error instanceof SignedOut) return;
    returnsMessage(`Could not list the pending returns again: ${error.message}`);
    buttons.forEach((button) => { button.disabled = false; });
    return;
  }
  // An approval credits the vendor: the spend, CPA and reports follow it.
  if (status === "approved") refreshAfterChange().catch(panelError);
}

const DISPOSITIONS = ["new", "contacted", "qualified", "closed", "lost"];

function leadRow(page, i, path) {
  const lead = page.data[i];
  const at = `data.${i}`;
  const select = el("select", { class: "disposition", "data-lead-id": lead.lead_id });
  for (const name of DISPOSITIONS) select.append(el("option", { value: name, selected: name === lead.disposition }, name));
  select.addEventListener("change", () => moveLead(lead, select));
  const name = el("td");
  const parts = ["first_name", "last_name"].filter((key) => lead[key]);
  if (parts.length) parts.forEach((key, n) => name.append(...(n ? [" "] : []), span(page, `${at}.${key}`, "text")));
  else value(name, page, `${at}.${lead.email ? "email" : "phone"}`, "text");
  const created = span(page, `${at}.created_at`, "text");
  created.textContent = lead.created_at.slice(0, 10); // the day of the timestamp
  created.dataset.format = "day";
  return el("tr", { "data-lead-id": lead.lead_id, "data-url": path },
    el("td", {}, created), name, cell(page, `${at}.vendor_code`, "text"),
    cell(page, `${at}.campaign_source`, "text"), cell(page, `${at}.assigned_agent`, "text"), cell(page, `${at}.lead_value`, "money"),
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
    if (error instanceof SignedOut) return;
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
    await loadAll([loadStats, loadAnalytics, loadAgents, loadAgencies, loadReport]);
  }
}

function leadQuery() {
  const params = new URLSearchParams({ limit: "25" });
  const filters = { q: "#filter-q", vendor: "#filter-vendor", campaign: "#filter-campaign", disposition: "#filter-disposition" };
  for (const [name, selector] of Object.entries(filters)) {
    const given = $(selector).value.trim();
    if (given) params.set(name, given);
  }
  return params;
}

async function loadLeads(more = false) {
  const params = leadQuery();
  if (more && state.leadsCursor) params.set("cursor", state.leadsCursor);
  const path = `/leads?${params}`;
  const page = await latest("leads", path);
  if (!page) return;
  const body = $("#leads-table tbody");
  if (!more) body.replaceChildren();
  body.append(...page.data.map((_, i) => leadRow(page, i, path)));
  state.leadsCursor = page.pagination.cursor;
  $("#leads-more").hidden = !page.pagination.hasMore;
}

/** Runs the loaders together; body[data-ready] is "all" once every one has rendered and no other
 * load is still out. The first failure is rethrown after all have settled. */
let loadsOut = 0;

async function loadAll(loaders) {
  loadsOut += 1;
  document.body.dataset.ready = "loading";
  const results = await Promise.allSettled(loaders.map((load) => load()));
  loadsOut -= 1;
  const failed = results.find((result) => result.status === "rejected");
  if (failed?.reason instanceof SignedOut) throw failed.reason;
  if (failed) {
    document.body.dataset.ready = "error";
    throw failed.reason;
  }
  if (loadsOut === 0) document.body.dataset.ready = "all";
}


const panelError = (error) => { if (!(error instanceof SignedOut)) showError(error.message); };
const reload = (loaders) => loadAll(loaders).then(() => showError(""), panelError);

// -- Cognito (its JSON API, called from the browser as the AWS SDKs call it) -------------------------
class CognitoError extends Error {
  constructor(type, message) {
    super(message);
    this.type = type;
  }
}

async function cognito(action, body) {
  let response;
  try {
    response = await fetch(config.cognitoEndpoint, {
      method: "POST",
      cache: "no-store",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `AWSCognitoIdentityProviderService.${action}` },
      body: JSON.stringify(body),
    });
  } catch (error) {
    throw new CognitoError("NetworkError", `Cannot reach the sign-in service at ${config.cognitoEndpoint}`);
  }
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    // `__type` is the error's name, at times after a namespace: "...#NotAuthorizedException".
    const type = String(answer.__type || `HTTP ${response.status}`).split("#").pop();
    throw new CognitoError(type, answer.message || answer.Message || `HTTP ${response.status}`);
  }
  return answer;
}

/** What to tell someone whose sign-in Cognito refused. A wrong password and an unknown email get
 * the same words: the page does not tell which accounts exist. */
function signInProblem(error) {
  switch (error.type) {
    case "NotAuthorizedException":
      if (/disabled/i.test(error.message)) return "This account is disabled.";
      if (/attempts exceeded/i.test(error.message)) return "Too many attempts: wait a little, then sign in again.";
      return "Incorrect email or password.";
    case "UserNotFoundException":
      return "Incorrect email or password.";
    case "PasswordResetRequiredException":
      return "Your password has to be reset: ask an administrator for a new temporary password.";
    case "UserNotConfirmedException":
      return "This account is not confirmed yet: ask an administrator.";
    case "TooManyRequestsException":
    case "LimitExceededException":
      return "Too many attempts: wait a little, then sign in again.";
    case "InvalidPasswordException":
      return `That new password is not accepted: ${error.message}`;
    default:
      return error.type === "NetworkError" ? error.message : `Sign-in failed: ${error.message}`;
  }
}

/** The claims of a JWT, read without checking its signature: only to choose what to display. */
function claimsOf(token) {
  const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  const bytes = Uint8Array.from(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

// Refresh the ID token this long before it expires (or half-way, for a token shorter than twice it).
const REFRESH_MARGIN_SECONDS = 300;

function keepTokens(current, result) {
  current.idToken = result.IdToken;
  current.accessToken = result.AccessToken;
  if (result.RefreshToken) current.refreshToken = result.RefreshToken; // a refresh keeps the same one
  current.claims = claimsOf(result.IdToken);
  clearTimeout(current.timer);
  const seconds = Number(result.ExpiresIn) || 3600;
  const refreshIn = Math.max(seconds - REFRESH_MARGIN_SECONDS, seconds / 2);
  current.timer = setTimeout(() => refreshSession(current).catch(() => {}), refreshIn * 1000);
}

/** A new ID token (and access token) for `current`'s refresh token; the same request for every
 * caller while one is out. When Cognito refuses (the refresh token expired or was revoked), the
 * session ends and the sign-in form says so. */
function refreshSession(current) {
  current.refreshing ??= cognito("InitiateAuth", {
    AuthFlow: "REFRESH_TOKEN_AUTH",
    ClientId: config.clientId,
    AuthParameters: { REFRESH_TOKEN: current.refreshToken },
  }).then((answer) => {
    if (session !== current) throw new SignedOut("signed out");
    keepTokens(current, answer.AuthenticationResult);
    current.refreshes += 1;
    document.body.dataset.tokenRefreshes = String(current.refreshes); // for tests: the new token is in use
  }, (error) => {
    if (session === current) signOut("Your session has ended: sign in again.");
    throw new SignedOut(error.message);
  }).finally(() => {
    current.refreshing = null;
  });
  return current.refreshing;
}

// -- sign-in, sign-out ---------------------------------------------------------------------------
function signInMessage(message) {
  const node = $("#sign-in-message");
  node.textContent = message;
  node.hidden = !message;
}

function showSignIn(message = "") {
  challenge = null;
  $("#sign-in").hidden = false;
  $("#login-form").hidden = false;
  $("#new-password-form").hidden = true;
  $("#new-password-form").reset();
  $("#password").value = "";
  signInMessage(message);
  $("#email").focus();
}

async function signIn() {
  performance.mark("sign-in");
  const email = $("#email").value.trim();
  signInMessage("");
  $("#login").disabled = true;
  try {
    const answer = await cognito("InitiateAuth", {
      AuthFlow: "USER_PASSWORD_AUTH",
      ClientId: config.clientId,
      AuthParameters: { USERNAME: email, PASSWORD: $("#password").value },
    });
    $("#password").value = "";
    await answered(answer, email);
  } catch (error) {
    $("#password").value = "";
    signInMessage(signInProblem(error));
  } finally {
    $("#login").disabled = false;
  }
}

/** Cognito's answer to a sign-in step: tokens (the dashboard opens) or a challenge. */
async function answered(answer, email) {
  if (answer.AuthenticationResult) return openSession(answer.AuthenticationResult, email);
  if (answer.ChallengeName === "NEW_PASSWORD_REQUIRED") {
    const parameters = answer.ChallengeParameters || {};
    challenge = { email, username: parameters.USER_ID_FOR_SRP || parameters.USERNAME || email, session: answer.Session };
    $("#login-form").hidden = true;
    $("#new-password-form").hidden = false;
    $("#new-password").focus();
    return;
  }
  // MFA and other steps are Cognito's hosted sign-in's, not this page's.
  showSignIn(`This account needs a sign-in step the dashboard does not offer (${answer.ChallengeName}).`);
}

async function setNewPassword() {
  if (!challenge) return showSignIn();
  const password = $("#new-password").value;
  if (password !== $("#new-password-again").value) return signInMessage("The two passwords differ.");
  signInMessage("");
  $("#set-password").disabled = true;
  try {
    const answer = await cognito("RespondToAuthChallenge", {
      ChallengeName: "NEW_PASSWORD_REQUIRED",
      ClientId: config.clientId,
      Session: challenge.session,
      ChallengeResponses: { USERNAME: challenge.username, NEW_PASSWORD: password },
    });
    const { email } = challenge;
    $("#new-password-form").reset();
    challenge = null;
    await answered(answer, email);
  } catch (error) {
    if (error.type === "NotAuthorizedException" || error.type === "ResourceNotFoundException") {
      // The challenge's session lasts minutes: the temporary password is asked again.
      showSignIn("This sign-in took too long: sign in again with your temporary password.");
    } else {
      signInMessage(signInProblem(error));
    }
  } finally {
    $("#set-password").disabled = false;
  }
}

/** Opens the dashboard for the tokens of `email`'s sign-in (the address typed is the one shown). */
async function openSession(result, email) {
  const current = { idToken: "", accessToken: "", refreshToken: "", claims: {}, timer: null, refreshing: null, refreshes: 0 };
  keepTokens(current, result);
  session = current;
  const groups = current.claims["cognito:groups"] || [];
  state.mayDecide = groups.includes("admin"); // display only: the API checks every call's role
  $("#sign-in").hidden = true;
  $("#who").textContent = `${email || current.claims.email || ""} (${groups.join(", ") || "no group"})`;
  $("#logout").hidden = false;
  try {
    await loadAll([loadStats, loadAnalytics, loadAgents, loadAgencies, loadReport, loadLeads, loadReturns]);
    showError("");
    $("#app").hidden = false;
    performance.mark("dashboard-ready");
  } catch (error) {
    if (error instanceof SignedOut) return;
    signOut();
    showError(error.status === 403 ? "This dashboard is for admins and managers." : error.message);
  }
}

/** Forgets the tokens and every answer shown, back to the sign-in form; then asks Cognito to revoke
 * the tokens (GlobalSignOut: the refresh token no longer works, nor the access token at Cognito). */
function signOut(message = "") {
  const ending = session;
  session = null;
  if (ending) clearTimeout(ending.timer);
  resetDashboard();
  showSignIn(message);
  if (ending) cognito("GlobalSignOut", { AccessToken: ending.accessToken }).catch(() => {}); // forgotten here either way
}

// The panels as the page was loaded, before any answer was put in them: sign-out puts them back.
let pristineApp = null;

function resetDashboard() {
  const fresh = pristineApp.cloneNode(true);
  $("#app").replaceWith(fresh);
  wireApp();
  Object.assign(state, { leadsCursor: null, range: { period: "30d" }, shown: null, mayDecide: false, decidedReturns: new Set() });
  for (const panel of Object.keys(latestRequest)) latestRequest[panel] += 1; // answers still out are dropped
  delete document.body.dataset.ready;
  delete document.body.dataset.tokenRefreshes;
  $("#who").textContent = "";
  $("#logout").hidden = true;
  showError("");
}

function applyRange() {
  state.range = readRange();
  reload([loadStats, loadAnalytics]);
}

function wireApp() {
  $("#range-period").addEventListener("change", () => {
    readRange();
    if ($("#range-period").value !== "custom") applyRange();
  });
  $("#range-form").addEventListener("submit", (event) => { event.preventDefault(); applyRange(); });
  $("#report-form").addEventListener("submit", (event) => { event.preventDefault(); reload([loadReport]); });
  $("#report-kind").addEventListener("change", () => reload([loadReport]));
  $("#report-csv").addEventListener("click", () => downloadReport().catch(panelError));
  $("#lead-filters").addEventListener("submit", (event) => { event.preventDefault(); loadLeads().catch(panelError); });
  $("#leads-more").addEventListener("click", () => loadLeads(true).catch(panelError));
}

async function start() {
  pristineApp = $("#app").cloneNode(true);
  wireApp();
  $("#login-form").addEventListener("submit", (event) => { event.preventDefault(); signIn(); });
  $("#new-password-form").addEventListener("submit", (event) => { event.preventDefault(); setNewPassword(); });
  $("#logout").addEventListener("click", () => {
    signOut();
    $("#email").value = ""; // the next person at this browser starts from an empty form
  });
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    config = await response.json();
    config.api = String(config.api).replace(/\/$/, "");
  } catch (error) {
    showError(`Cannot read this dashboard's configuration (config.json): ${error.message}`);
    return;
  }
  showSignIn();
}

start();
