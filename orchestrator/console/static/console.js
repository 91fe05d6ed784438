// The saga console: polls the order-api's JSON (orders every second, the open order and its workflow history every
// second until it has finished) and draws it. No framework, no build step, nothing from the network.
// The page's wiring is here; its parts are dom.js (helpers) and timeline.js (one order drawn).

import { $, badge, call, cents, clock, h, showProblem } from "./dom.js";
import { TERMINAL, renderOrder } from "./timeline.js";

const POLL_MS = 1000;
const FAULT_POLL_MS = 2000;

let config = null;
let openOrder = null; // {id, done, history, view}
let orderTimer = null;

// --- routing: /console and /console/orders/{id} -------------------------------------------------------------

function orderIdFromPath() {
  const match = location.pathname.match(/^\/console\/orders\/([^/]+)\/?$/);
  return match ? decodeURIComponent(match[1]) : null;
}

function go(path) {
  if (location.pathname !== path) history.pushState({}, "", path);
  route();
}

function route() {
  const id = orderIdFromPath();
  clearTimeout(orderTimer);
  openOrder = id ? { id, done: false, afterDone: 0 } : null;
  document.querySelectorAll("#order-rows tr").forEach((tr) => tr.classList.toggle("open", tr.dataset.orderId === id));
  if (!id) {
    $("order-body").replaceChildren(h("p", { class: "muted" }, "Pick an order, or start a scenario: its saga shows here."));
    return;
  }
  $("order-body").replaceChildren(h("p", { class: "muted" }, `Loading ${id}…`));
  pollOrder(id);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  go(link.getAttribute("href"));
});
window.addEventListener("popstate", route);

// --- the orders --------------------------------------------------------------------------------------------

async function pollOrders() {
  try {
    const page = await call("GET", "/orders?limit=50");
    renderOrders(page.items);
    $("live").textContent = `live · ${new Date().toLocaleTimeString([], { hour12: false })}`;
    showProblem(null);
  } catch (err) {
    $("live").textContent = "disconnected";
    showProblem(`The order-api did not answer: ${err.message}`);
  }
  setTimeout(pollOrders, POLL_MS);
}

function renderOrders(orders) {
  const open = orderIdFromPath();
  $("order-rows").replaceChildren(
    ...orders.map((o) =>
      h("tr", { "data-order-id": o.order_id, class: o.order_id === open ? "open" : null },
        h("td", {}, h("a", { href: `/console/orders/${encodeURIComponent(o.order_id)}`, "data-nav": true }, o.order_id)),
        h("td", {}, badge(o.status)),
        h("td", { class: "num" }, cents(o.total_cents)),
        h("td", { class: "muted" }, clock(o.created_at)),
      ),
    ),
  );
  if (!orders.length) $("order-rows").append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, "No orders yet.")));
}

// --- one order: its saga as a timeline ----------------------------------------------------------------------

async function pollOrder(id) {
  if (!openOrder || openOrder.id !== id) return;
  let view, events = null, historyNote = null, told = null;
  try {
    view = await call("GET", `/orders/${encodeURIComponent(id)}`);
  } catch (err) {
    $("order-body").replaceChildren(h("p", { class: "problem" }, `${id}: ${err.message}`));
    openOrder.done = err.status === 404;
    if (!openOrder.done) orderTimer = setTimeout(() => pollOrder(id), POLL_MS);
    return;
  }
  try {
    events = await call("GET", `/orders/${encodeURIComponent(id)}/history`);
  } catch (err) {
    historyNote = `No workflow history: ${err.message}. The bars below come from the saga's own record.`;
  }
  if (TERMINAL.has(view.status)) {
    try { told = await call("GET", `/console/api/orders/${encodeURIComponent(id)}/notifications`); } catch { told = null; }
  }
  if (!openOrder || openOrder.id !== id) return;
  renderOrder(view, events, historyNote, told);
  // Finished: poll a little longer, until the history has the workflow's own end (it follows the last record).
  const ended = !events || events.some((e) => e.type === "ExecutionCompleted");
  if (TERMINAL.has(view.status) && (ended || ++openOrder.afterDone > 10)) return;
  orderTimer = setTimeout(() => pollOrder(id), POLL_MS);
}

// --- scenarios and faults ------------------------------------------------------------------------------------

function renderControls() {
  const note = $("controls-note");
  note.textContent = config.controls
    ? "One click: arms the faults it needs for its own order, submits it, clears them when it ends."
    : config.why_not;
  $("scenario-buttons").replaceChildren(...config.scenarios.map((s) =>
    h("button", { type: "button", "data-scenario": s.name, disabled: !config.controls, title: `${s.summary} (ends ${s.expect})`,
      onclick: () => runScenario(s.name) }, s.name)));
  const form = $("fault-form");
  form.hidden = !config.controls;
  $("clear-all").hidden = !config.controls;
  form.app.replaceChildren(...Object.keys(config.activities).map((app) => h("option", {}, app)));
  const activities = () => form.activity.replaceChildren(...(config.activities[form.app.value] || []).map((a) => h("option", {}, a)));
  form.app.addEventListener("change", activities);
  form.app.value = "payment";
  activities();
  const links = Object.entries({ "order-api": location.origin, ...config.apps }).filter(([app], i, all) =>
    all.findIndex(([other]) => other === app) === i);
  $("links").replaceChildren(...links.map(([app, url]) => h("a", { href: `${url}/schema/swagger`, target: "_blank" }, `${app} API`)));
}

async function runScenario(name) {
  try {
    const started = await call("POST", `/console/api/scenarios/${name}`);
    showProblem(null);
    go(`/console/orders/${encodeURIComponent(started.order_id)}`);
    pollFaults(false);
  } catch (err) {
    showProblem(`Scenario ${name}: ${err.message}`);
  }
}

async function pollFaults(again = true) {
  if (config.controls) {
    try {
      renderFaults(await call("GET", "/console/api/faults"));
    } catch (err) {
      $("fault-list").replaceChildren(h("p", { class: "problem" }, err.message));
    }
  } else {
    $("fault-list").replaceChildren(h("p", { class: "muted" }, config.why_not));
  }
  if (again) setTimeout(pollFaults, FAULT_POLL_MS);
}

function renderFaults(apps) {
  $("fault-list").replaceChildren(h("table", {}, ...apps.map((a) =>
    h("tr", { "data-app": a.app }, h("th", {}, a.app),
      h("td", {}, a.error ? h("span", { class: "muted" }, a.error)
        : a.faults.length ? a.faults.map((f) => h("span", { class: "fault" },
            `${f.activity} ${f.mode}`,
            [["remaining", f.remaining], ["delay_ms", f.delay_ms], ["order", f.order_id]]
              .filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => ` ${k}=${v}`).join(""),
            h("button", { type: "button", class: "small", title: "clear",
              onclick: () => changeFaults("DELETE", `/console/api/faults/${a.app}/${f.activity}`) }, "×")))
        : h("span", { class: "muted" }, "none"))))));
}

async function changeFaults(method, url, body) {
  try {
    await call(method, url, body);
    showProblem(null);
  } catch (err) {
    showProblem(err.message);
  }
  pollFaults(false);
}

$("fault-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  const body = { mode: form.mode.value };
  for (const key of ["count", "delay_ms"]) if (form[key].value) body[key] = Number(form[key].value);
  if (form.order_id.value.trim()) body.order_id = form.order_id.value.trim();
  changeFaults("PUT", `/console/api/faults/${form.app.value}/${form.activity.value}`, body);
});
$("clear-all").addEventListener("click", () => changeFaults("DELETE", "/console/api/faults"));

// --- start ------------------------------------------------------------------------------------------------

async function start() {
  try {
    config = await call("GET", "/console/api/config");
  } catch (err) {
    showProblem(`The console's configuration did not load: ${err.message}`);
    setTimeout(start, POLL_MS);
    return;
  }
  renderControls();
  pollOrders();
  pollFaults();
  route();
}

start();
