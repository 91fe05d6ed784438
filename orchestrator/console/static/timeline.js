// One order drawn: its saga as a timeline (a lane per step and undo, each attempt a bar, each retry timer and
// deadline on the axis), the compensation stack, what the customer was told, and the boxes a person acts in (the
// approval, an operator's resolution). Drawn anew from the order and its workflow history at every poll.

import { $, badge, call, cents, clock, h, seconds, showProblem } from "./dom.js";

export const TERMINAL = new Set(["COMPLETED", "COMPENSATED", "REJECTED", "CANCELLED", "COMPENSATION_FAILED"]);
const UNDOS = new Set(["release_inventory", "refund", "cancel_shipment"]);
const DONE = new Set(["TaskCompleted", "TaskFailed", "ChildWorkflowInstanceCompleted", "ChildWorkflowInstanceFailed"]);

// Attempts of each activity from the history: TaskScheduled paired with its TaskCompleted/TaskFailed by task id;
// a retry is the same activity scheduled again after a timer.
function attemptsFrom(events) {
  const byTask = new Map();
  const rows = [];
  const rowOf = new Map();
  let lastFailed = null;
  const timers = [];
  for (const e of events) {
    if (e.type === "TaskScheduled" || e.type === "ChildWorkflowInstanceCreated") {
      let row = rowOf.get(e.name);
      if (!row || row.closed) {
        const kind = e.type === "ChildWorkflowInstanceCreated" ? "workflow" : "activity";
        row = { name: e.name, app: e.app, kind, attempts: [], timers: [], closed: false };
        rows.push(row);
        rowOf.set(e.name, row);
      }
      const attempt = { start: Date.parse(e.timestamp), end: null, outcome: "running", failure: null };
      row.attempts.push(attempt);
      byTask.set(e.task_id, { row, attempt });
    } else if (DONE.has(e.type)) {
      const found = byTask.get(e.task_id);
      if (!found) continue;
      const ok = e.type === "TaskCompleted" || e.type === "ChildWorkflowInstanceCompleted";
      found.attempt.end = Date.parse(e.timestamp);
      found.attempt.outcome = ok ? "ok" : "failed";
      found.attempt.failure = e.failure || null;
      found.attempt.result = e.result || null;
      if (ok) found.row.closed = true;
      lastFailed = ok ? null : found.row;
    } else if (e.type === "TimerCreated" && e.timer_origin === "createTimer") {
      continue; // the deadline of a wait for a person, drawn on its own lane
    } else if (e.type === "TimerCreated") {
      const timer = { start: Date.parse(e.timestamp), end: Date.parse(e.fire_at), fired: false, id: e.task_id };
      timers.push(timer);
      if (lastFailed) lastFailed.timers.push(timer); // the backoff before the next attempt
      lastFailed = null;
    } else if (e.type === "TimerFired") {
      const timer = timers.find((t) => t.id === e.task_id);
      if (timer) { timer.fired = true; timer.end = Date.parse(e.fire_at); } // when it was due, as recorded
    }
  }
  return rows;
}

export function renderOrder(view, events, historyNote, told) {
  const now = Date.now();
  const stepOf = Object.fromEntries(view.steps.map((s) => [s.name, s]));
  const undoOf = Object.fromEntries(view.compensations.map((c) => [c.name, c]));
  let rows;
  if (events) {
    rows = attemptsFrom(events);
  } else {
    rows = view.steps.filter((s) => s.kind !== "wait").map((s) => ({
      name: s.name, app: s.app, timers: [],
      attempts: s.started_at ? [{ start: Date.parse(s.started_at), end: s.finished_at ? Date.parse(s.finished_at) : null,
        outcome: s.outcome === "running" ? "running" : s.outcome === "failed" ? "failed" : "ok" }] : [],
    }));
    for (const c of view.compensations) rows.push({ name: c.name, timers: [], attempts: [] });
  }
  rows = withWaits(rows, view.steps, now);
  const waiting = view.status === "AWAITING_APPROVAL" && view.approval ? Date.parse(view.approval.deadline) : null;
  const starts = rows.flatMap((r) => r.attempts.map((a) => a.start));
  const begin = events && events.length ? Date.parse(events[0].timestamp) : Math.min(Date.parse(view.created_at), ...starts);
  const ends = rows.flatMap((r) => [...r.attempts.map((a) => a.end ?? now), ...r.timers.map((t) => t.end)]);
  const last = events && events.length ? Date.parse(events[events.length - 1].timestamp) : begin;
  let finish = TERMINAL.has(view.status) ? Math.max(last, ...ends) : Math.max(now, ...ends);
  // A deadline a few minutes off is drawn on the axis; a day off would squash the rest to nothing.
  if (waiting && waiting - now < 5 * 60 * 1000) finish = Math.max(finish, waiting);
  const span = Math.max(finish - begin, 1);
  const x = (t) => `${(((t - begin) / span) * 100).toFixed(3)}%`;
  const w = (a, b) => `${Math.max(((b - a) / span) * 100, 0.4).toFixed(3)}%`;

  const cancelAt = events ? events.filter((e) => e.type === "EventRaised") : [];
  const lines = rows.flatMap((row) => {
    const undo = UNDOS.has(row.name) || row.name in undoOf;
    const record = undo ? undoOf[row.name] : stepOf[row.name];
    const outcome = record ? record.outcome : row.attempts.some((a) => a.outcome === "ok") ? "done" : "running";
    const attempts = (record && record.attempts) || row.attempts.length || null;
    const reason = record && record.reason ? record.reason : null;
    const app = row.app || (record && record.app) || (row.name === "record_order_status" ? "order-api" : "");
    const segments = [];
    row.attempts.forEach((a, i) => {
      const cls = a.outcome === "failed" ? "failed" : a.outcome === "running" ? "running" : outcome;
      segments.push(h("div", {
        class: `bar ${undo ? "undo" : "step"} ${cls}`, "data-name": row.name,
        style: `left:${x(a.start)};width:${w(a.start, a.end ?? now)}`,
        title: `${row.name} attempt ${i + 1}: ${a.outcome}${a.failure ? ` (${a.failure})` : ""}, ${seconds((a.end ?? now) - a.start)}`,
      }));
    });
    for (const t of row.timers) {
      segments.push(h("div", {
        class: "bar timer", style: `left:${x(t.start)};width:${w(t.start, t.end)}`,
        title: `retry timer: ${seconds(t.end - t.start)}${t.fired ? "" : " (waiting)"}`,
      }));
    }
    const kind = row.kind === "workflow" ? "child workflow" : row.kind === "wait" ? "wait" : undo ? "undo" : "step";
    if (row.kind === "wait" && row.deadline) {
      const due = Date.parse(row.deadline);
      if (due >= begin && due <= begin + span) {
        segments.push(h("div", { class: "marker deadline", style: `left:${x(due)}`, title: `deadline ${clock(row.deadline)}` }));
      }
    }
    const lane = h("div", {
        class: `lane ${undo ? "undo" : row.kind === "wait" ? "wait" : "step"}${row.name === "record_order_status" ? " quiet" : ""}`,
        "data-lane": row.name },
      h("div", { class: "label" },
        h("span", { class: "kind" }, kind), " ", h("strong", {}, row.name),
        app ? h("span", { class: "muted" }, ` on ${app}`) : null,
        h("div", { class: "detail" }, badge(outcome),
          record && record.decision ? h("span", { class: "decision" }, ` ${record.decision}`) : null,
          attempts && row.kind !== "wait" ? h("span", { class: attempts > 1 ? "retried" : "muted" }, ` ${attempts} attempt${attempts > 1 ? "s" : ""}`) : null,
          row.timers.length ? h("span", { class: "muted" }, `, ${row.timers.length} retry timer${row.timers.length > 1 ? "s" : ""}`) : null,
          row.kind === "wait" && row.deadline ? h("span", { class: "muted deadline-text" }, ` until ${clock(row.deadline)}${
            outcome === "waiting" ? ` (${Math.max(0, Math.round((Date.parse(row.deadline) - now) / 1000))} s left)` : ""}`) : null,
          reason ? h("span", { class: outcome === "succeeded" ? "muted" : "reason" }, ` ${reason}`) : null),
      ),
      h("div", { class: "track" }, ...segments,
        ...cancelAt.map((e) => h("div", { class: "marker", style: `left:${x(Date.parse(e.timestamp))}`, title: `event ${e.name}` }))),
    );
    return [lane, ...childLanes(record, x, w, now)];
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) =>
    h("span", { class: "tick", style: `left:${(f * 100).toFixed(1)}%` }, `+${seconds(f * span)}`));

  const stack = view.compensations;
  const stackBox = h("div", { class: "box", id: "stack" }, h("h3", {}, "Compensation stack"),
    stack.length
      ? h("ol", {}, ...stack.map((c) => h("li", {}, h("strong", {}, c.name), " ", badge(c.outcome),
          c.reason ? h("span", { class: "reason" }, ` ${c.reason}`) : null)))
      : h("p", { class: "muted" }, view.status === "COMPLETED"
          ? "Empty: every step succeeded, so the undos pushed before them were dropped."
          : view.status === "REJECTED" ? "Empty: the order was refused before anything happened."
          : "Empty so far."),
    stack.length ? h("p", { class: "muted" }, TERMINAL.has(view.status)
      ? "As it stood when the saga unwound, top first: each undo in the order it ran."
      : "Top first: what would be undone, in this order, if a step failed now.") : null,
  );
  const toldBox = h("div", { class: "box", id: "told" }, h("h3", {}, "What the customer was told"),
    told && told.length
      ? h("ul", {}, ...told.map((n) => h("li", {}, `${n.channel} · `, h("strong", {}, n.kind), ` · ${n.status}`,
          n.message ? h("span", { class: "told" }, ` “${n.message}”`) : null)))
      : h("p", { class: "muted" }, TERMINAL.has(view.status) ? "Nothing (yet)." : "Nothing until the saga ends."),
    view.warnings ? h("p", { class: "reason" }, view.warnings.join("; ")) : null,
  );

  const approvalBox = view.approval ? approvalPanel(view, now) : null;
  const link = `/console/orders/${encodeURIComponent(view.order_id)}`;
  // The trace the saga runs in (traces on): its ExecutionStarted carries it.
  const traceId = view.trace_id || (events || []).map((e) => e.trace_id).find(Boolean);
  $("order-body").replaceChildren(...[
    h("h2", {}, h("a", { href: link, "data-nav": true, id: "order-link" }, view.order_id), " ", badge(view.status),
      view.cancel_requested ? h("span", { class: "muted" }, " cancel requested") : null),
    h("p", { class: "facts" },
      `total ${cents(view.total_cents)} · created ${clock(view.created_at)} · updated ${clock(view.updated_at)}`,
      traceId ? h("span", { id: "trace-id" }, ` · trace id ${traceId}`) : null),
    view.failure ? h("p", { class: "problem" }, `${view.failure.step}: ${view.failure.reason}`) : null,
    view.workflow ? h("p", { class: "problem" }, `workflow ${view.workflow.runtime_status}: ${view.workflow.failure || ""}`) : null,
    view.status === "WORKFLOW_FAILED" || view.resolution ? operatorBox(view) : null,
    historyNote ? h("p", { class: "muted" }, historyNote) : null,
    approvalBox,
    h("div", { class: "timeline", id: "timeline" }, h("div", { class: "axis" }, h("div", { class: "label" }), h("div", { class: "track" }, ...ticks)), ...lines),
    h("p", { class: "legend muted" },
      h("span", { class: "swatch succeeded" }), "succeeded ", h("span", { class: "swatch failed" }), "failed attempt ",
      h("span", { class: "swatch timer" }), "retry timer ", h("span", { class: "swatch undo" }), "undo ",
      h("span", { class: "swatch running" }), "running",
      view.approval ? [" ", h("span", { class: "swatch wait" }), "waiting for a person ",
        h("span", { class: "swatch marker deadline" }), "deadline"] : null,
      cancelAt.length ? [" ", h("span", { class: "swatch marker" }), "event raised (cancel, approval)"] : null),
    h("div", { class: "boxes" }, stackBox, toldBox),
  ].filter(Boolean));
}

// A wait for a person is no task of the workflow's history: its lane comes from the saga's own record of it,
// placed after the step that came before it.
function withWaits(rows, steps, now) {
  const out = [...rows];
  steps.forEach((step, i) => {
    if (step.kind !== "wait") return;
    const start = Date.parse(step.started_at);
    const end = step.finished_at ? Date.parse(step.finished_at) : null;
    const row = { name: step.name, kind: "wait", deadline: step.deadline, timers: [],
      attempts: [{ start, end, outcome: step.outcome === "waiting" ? "waiting" : step.outcome === "succeeded" ? "ok" : "failed" }] };
    const before = i > 0 ? out.findIndex((r) => r.name === steps[i - 1].name) : -1;
    out.splice(before + 1, 0, row);
  });
  return out;
}

// A child workflow's own steps, as it reported them, as lanes nested under its own; with its custody check.
function childLanes(record, x, w, now) {
  if (!record || !record.steps) return [];
  const lanes = record.steps.map((s) => {
    const start = Date.parse(s.started_at);
    const end = s.finished_at ? Date.parse(s.finished_at) : now;
    return h("div", { class: "lane child", "data-lane": `${record.name}/${s.name}` },
      h("div", { class: "label" }, h("span", { class: "kind" }, "└ step"), " ", h("strong", {}, s.name),
        h("span", { class: "muted" }, ` in ${record.name}`),
        h("div", { class: "detail" }, badge(s.outcome), s.reason ? h("span", { class: "reason" }, ` ${s.reason}`) : null)),
      h("div", { class: "track" }, h("div", { class: `bar step ${s.outcome}`, "data-name": s.name,
        style: `left:${x(start)};width:${w(start, end)}`, title: `${s.name}: ${s.outcome}` })));
  });
  if (record.custody) {
    const c = record.custody;
    lanes.push(h("div", { class: "lane child custody", id: "custody" },
      h("div", { class: "label" }, h("span", { class: "kind" }, "└ history"), " ", h("strong", {}, "chain of custody"),
        h("div", { class: "detail" }, badge(c.ok ? "holds" : "broken"), c.reason ? h("span", { class: "reason" }, ` ${c.reason}`) : null)),
      h("div", { class: "track checks" }, h("ul", {}, ...c.checks.map((text) => h("li", {}, `✓ ${text}`))))));
  }
  return lanes;
}

function approvalPanel(view, now) {
  const a = view.approval;
  const waiting = view.status === "AWAITING_APPROVAL" && a.state === "waiting";
  const left = Math.max(0, Math.round((Date.parse(a.deadline) - now) / 1000));
  // The page is drawn again every second, so it asks for no note (shop and the REST API take one).
  const decide = (verb) => async () => {
    try {
      await call("POST", `/orders/${encodeURIComponent(view.order_id)}/${verb}`, { reviewer: "console" });
      showProblem(null);
    } catch (err) {
      showProblem(`${verb} ${view.order_id}: ${err.message}`);
    }
  };
  return h("div", { class: `box approval ${a.state}`, id: "approval" },
    h("h3", {}, waiting ? "Awaiting approval" : `Approval: ${a.state.replace("_", " ")}`),
    h("p", {}, a.reason ? `The risk review asks a person: ${a.reason}.` : "The risk review asks a person.",
      " Deadline ", h("strong", { id: "deadline" }, clock(a.deadline)),
      waiting ? h("span", { class: "muted" }, ` (${left} s left; no decision by then rejects the order)`) : null),
    a.decided_at && !waiting ? h("p", { class: "muted" }, `decided ${clock(a.decided_at)}`,
      a.reviewer ? ` by ${a.reviewer}` : "", a.note ? `: “${a.note}”` : "") : null,
    waiting ? h("div", { class: "buttons" },
      h("button", { type: "button", id: "approve-button", class: "approve", onclick: decide("approve") }, "Approve"),
      h("button", { type: "button", id: "reject-button", class: "reject", onclick: decide("reject") }, "Reject")) : null,
  );
}

// An order whose saga workflow failed outside the saga needs an operator: the resolution runs every undo.
function operatorBox(view) {
  const resolution = view.resolution;
  const undos = resolution ? resolution.compensations : [];
  return h("div", { class: "box operator", id: "operator" }, h("h3", {}, "Needs an operator"),
    h("p", {}, "The saga's workflow itself failed (not a business outcome): nothing more happens until an operator ",
      "resolves the order. Resolving runs every undo (each idempotent: a no-op where its step never happened) and ",
      "records how the order ended."),
    resolution
      ? h("div", {}, h("p", {}, "Resolution ", badge(resolution.status || "RUNNING"),
          resolution.resolved_at ? h("span", { class: "muted" }, ` at ${clock(resolution.resolved_at)}`) : null),
        undos.length ? h("ol", {}, ...undos.map((c) => h("li", {}, h("strong", {}, c.name), " ", badge(c.outcome),
          c.reason ? h("span", { class: "reason" }, ` ${c.reason}`) : null))) : null)
      : h("button", { type: "button", id: "resolve", onclick: () => resolveOrder(view.order_id) }, "Resolve: run every undo"),
  );
}

async function resolveOrder(id) {
  try {
    await call("POST", `/orders/${encodeURIComponent(id)}/resolve`);
    showProblem("");
  } catch (err) {
    showProblem(`resolve ${id}: ${err.message}`);
  }
}
