// The console's small helpers: elements built from data (never from HTML strings), the order-api's JSON over fetch
// (its problem details as errors), the page's problem line, and the formats of a badge, an amount, a time, a span.

export const $ = (id) => document.getElementById(id);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "style") el.style.cssText = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export async function call(method, url, body) {
  const init = { method, headers: { accept: "application/json" } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `${response.status} ${response.statusText}`;
    const err = new Error(detail);
    err.status = response.status;
    throw err;
  }
  return data;
}

export function showProblem(message) {
  const el = $("problem");
  el.textContent = message || "";
  el.hidden = !message;
}

export const badge = (status) => h("span", { class: `badge ${String(status).toLowerCase()}` }, status);
export const cents = (value) => (value === null || value === undefined ? "–" : (value / 100).toFixed(2));
export const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "");
export const seconds = (ms) => `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
